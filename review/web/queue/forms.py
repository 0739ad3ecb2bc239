"""The reviewer's forms: a decision, a skip, an escalation (each carries the CSRF token)."""

# mypy: allow-subclassing-any
# flask_wtf ships no type information, so FlaskForm is Any; subclassing it is the point.

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField


class DecisionForm(FlaskForm):
    """Approve or override one item.

    The choices (labels, reason codes) belong to the queue and the rules to
    services.reviewing.parse_decision, so this form only carries the raw values (and the
    CSRF token); the service decides what is valid and names the bad field.
    """

    action = StringField()
    label = StringField()
    reason_code = StringField()
    comment = TextAreaField()
    # One per rendered item: a repeated submit of the same form is recognised as such.
    idempotency_key = HiddenField()

    def decision_data(self) -> dict[str, Any]:
        """The submitted values in the shape services.reviewing.decide expects."""
        return {
            "action": self.action.data or None,
            "label": self.label.data or None,
            "reason_code": self.reason_code.data or None,
            "comment": self.comment.data or "",
        }


def blank_decision_data() -> dict[str, Any]:
    """decision_data() of a form nobody has filled in, without building one: the review
    screen draws a fresh form after every decision, and building a FlaskForm only to read
    its empty fields cost 0.06 ms of CPU per answer."""
    return {"action": None, "label": None, "reason_code": None, "comment": ""}


class SkipForm(FlaskForm):
    """Pass on an item; the reason is checked by services.review_actions.skip."""

    skip_reason = StringField()
    skip_comment = TextAreaField()


class EscalateForm(FlaskForm):
    escalate_comment = TextAreaField()


class LeaseForm(FlaskForm):
    """Heartbeat, release and undo carry nothing but the CSRF token."""


# The services name the valid choices in an error ("is required, one of: wrong_label, ..."),
# which is what an API client needs. Next to a dropdown that already lists them, in words
# rather than codes, the form says what to do instead.
_CHOICE_PROMPTS = {
    "action": "Choose approve or override",
    "label": "Choose the right label",
    "reason_code": "Choose a reason code: an override needs one",
    "skip_reason": "Choose why you are skipping",
}


def form_errors(errors: dict[str, str]) -> dict[str, str]:
    """A service's field errors as the review screen shows them: an error that lists the
    field's choices becomes its prompt; any other (say, "the AI's own label") stays."""
    shown = dict(errors)
    for name, prompt in _CHOICE_PROMPTS.items():
        message = shown.get(name, "")
        if message.startswith(("must be one of", "is required, one of", "must be 'approve'")):
            shown[name] = prompt
    return shown
