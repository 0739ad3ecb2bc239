"""The form that starts a dataset snapshot from the ML page."""

# mypy: allow-subclassing-any
# flask_wtf ships no type information, so FlaskForm is Any; subclassing it is the point.

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField


class SnapshotForm(FlaskForm):
    """Raw values plus the CSRF token; services.datasets.parse_request decides what is valid
    and names the bad field (mapped to these fields by FIELD_FOR_ERROR)."""

    format = StringField(default="parquet")
    scope = StringField(default="overrides")
    labels = SelectMultipleField(choices=[], validate_choice=False)
    last_days = StringField()
    decided_from = StringField()
    decided_to = StringField()
    since_snapshot = StringField()
    reviewer_identity = StringField(default="pseudonymous")

    def request_data(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The API-shaped request, and errors for values that cannot even be parsed."""
        errors: dict[str, str] = {}
        data: dict[str, Any] = {
            "format": self.format.data or None,
            "reviewer_identity": self.reviewer_identity.data or None,
        }
        since = (self.since_snapshot.data or "").strip()
        if since:
            # An incremental snapshot keeps its base's filter, so the filter fields are moot.
            data["since_snapshot"] = int(since) if since.isdigit() else since
            return data, errors
        flt: dict[str, Any] = {"scope": self.scope.data or None, "labels": self.labels.data or []}
        days = (self.last_days.data or "").strip()
        if days:
            if days.isdigit() and len(days) < 7:
                flt["last_days"] = int(days)
            else:
                errors["last_days"] = "must be a whole number of days"
        for name in ("decided_from", "decided_to"):
            if value := (getattr(self, name).data or "").strip():
                flt[name] = value
        data["filter"] = flt
        return data, errors


# Service error fields (API names) to the form field that shows them.
FIELD_FOR_ERROR = {
    "format": "format",
    "reviewer_identity": "reviewer_identity",
    "since_snapshot": "since_snapshot",
    "filter": "scope",
    "filter.scope": "scope",
    "filter.labels": "labels",
    "filter.last_days": "last_days",
    "filter.decided_from": "decided_from",
    "filter.decided_to": "decided_to",
}
