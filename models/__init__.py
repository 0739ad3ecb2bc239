"""Typed SQLAlchemy models, one aggregate a module."""

from models.ai import AiBatch, AiCall
from models.audit import AuditChainHead, AuditEvent
from models.base import Base
from models.data_import import DataImport
from models.dataset import DatasetSnapshot
from models.history import ItemEvent
from models.invitation import Invitation
from models.item import Item, ModelVersion, Recommendation, Review, RoutingRecord
from models.queue import PolicyVersion, Queue, QueueMember
from models.user import ApiToken, User
from models.webhook import QueueWebhook, WebhookDelivery, WebhookEvent

__all__ = [
    "AiBatch",
    "AiCall",
    "ApiToken",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "DatasetSnapshot",
    "DataImport",
    "Invitation",
    "Item",
    "ItemEvent",
    "ModelVersion",
    "PolicyVersion",
    "Queue",
    "QueueMember",
    "QueueWebhook",
    "Recommendation",
    "Review",
    "RoutingRecord",
    "User",
    "WebhookDelivery",
    "WebhookEvent",
]
