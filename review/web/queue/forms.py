"""The reviewer's decision form."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField


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

    def decision_data(self) -> dict[str, Any]:
        """The submitted values in the shape services.reviewing.decide expects."""
        return {
            "action": self.action.data or None,
            "label": self.label.data or None,
            "reason_code": self.reason_code.data or None,
            "comment": self.comment.data or "",
        }
