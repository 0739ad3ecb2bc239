"""Typed SQLAlchemy models, one aggregate a module."""

from models.audit import AuditEvent
from models.base import Base
from models.item import Item, ModelVersion, Recommendation, Review, RoutingRecord
from models.queue import PolicyVersion, Queue, QueueMember
from models.user import ApiToken, User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Item",
    "ModelVersion",
    "PolicyVersion",
    "Queue",
    "QueueMember",
    "Recommendation",
    "Review",
    "RoutingRecord",
    "User",
]
