"""The message store (SQLAlchemy 2; SQLite by default, PostgreSQL in production)."""

from hub.store._errors import reachable
from hub.store._store import (
    DeliveryState,
    DeliveryView,
    EventView,
    MessageStore,
    MessageView,
    wait_for_store,
)

__all__ = ["DeliveryState", "DeliveryView", "EventView", "MessageStore", "MessageView", "reachable", "wait_for_store"]
