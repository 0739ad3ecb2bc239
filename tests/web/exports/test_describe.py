"""A snapshot's stored filters and times, put into words for the ML pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from review.web.exports.describe import snapshot_filters, utc_minute


def test_times_read_to_the_minute_in_utc_whatever_zone_they_were_stored_in():
    assert utc_minute("2026-11-20T13:03:21.233614+00:00") == "2026-11-20 13:03 UTC"
    paris = timezone(timedelta(hours=1))
    assert utc_minute(datetime(2026, 11, 20, 14, 3, tzinfo=paris)) == "2026-11-20 13:03 UTC"
    assert utc_minute(None) == "—"


def test_filters_name_the_decisions_labels_and_time_window():
    assert (
        snapshot_filters({"scope": "human", "labels": [], "decided_from": None, "decided_to": None})
        == "All human decisions; every final label; any decision time"
    )
    assert snapshot_filters(
        {
            "scope": "audited",
            "labels": ["refund", "spam"],
            "decided_from": datetime(2026, 11, 1, tzinfo=UTC).isoformat(),
            "decided_to": "2026-11-08T00:00:00+00:00",
        }
    ) == (
        "All human decisions and audited auto-approvals; final label refund, spam; "
        "decided from 2026-11-01 00:00 UTC to before 2026-11-08 00:00 UTC"
    )
    assert (
        snapshot_filters(
            {
                "scope": "overrides",
                "labels": ["spam"],
                "decided_from": None,
                "decided_to": "2026-11-08T00:00:00+00:00",
            }
        )
        == "Overrides only; final label spam; decided before 2026-11-08 00:00 UTC"
    )
