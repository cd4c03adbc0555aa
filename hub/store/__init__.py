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
from hub.store._table_sessions import TableSessions, as_utc, utc_now

__all__ = [
    "DeliveryState",
    "DeliveryView",
    "EventView",
    "MessageStore",
    "MessageView",
    "TableSessions",
    "as_utc",
    "reachable",
    "utc_now",
    "wait_for_store",
]
