"""Turning an item payload into one text document (kept here for the recommenders' imports)."""

from review.domain.text import payload_document

__all__ = ["payload_document"]
