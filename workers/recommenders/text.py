"""Turning an item payload into one text document (kept here for the recommenders' imports)."""

from review.domain.text import payload_document, payload_values_text

__all__ = ["payload_document", "payload_values_text"]
