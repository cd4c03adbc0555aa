"""One translation of database failures into :class:`StoreUnavailableError`, for every table keeper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from hub.errors import StoreUnavailableError

__all__ = ["reachable"]

log = structlog.get_logger(__name__)


@asynccontextmanager
async def reachable(what: str) -> AsyncIterator[None]:
    """Turn a database that cannot be reached into StoreUnavailableError with a sentence naming ``what``
    ("The message store"), without the driver's text (logged instead); a constraint violation or a value the
    database refuses (IntegrityError, DataError: DBAPIErrors too, but no outage) passes unchanged."""
    try:
        yield
    except (IntegrityError, DataError):
        raise
    except (OperationalError, DBAPIError, OSError, ConnectionError) as exc:
        # The driver's words stay in the log: the sentence may reach a client, and they can tell how the
        # database is set up (hosts, users, SQL).
        log.warning("store_unreachable", what=what, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        raise StoreUnavailableError(
            f"{what} cannot be reached; check that the database is running and HUB_DATABASE_URL is right"
            "; the hub's log has the database driver's error."
        ) from exc
