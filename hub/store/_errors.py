"""One translation of database failures into :class:`StoreUnavailableError`, for every table keeper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from hub.errors import StoreUnavailableError

__all__ = ["reachable"]


@asynccontextmanager
async def reachable(what: str) -> AsyncIterator[None]:
    """Turn a database that cannot be reached into StoreUnavailableError with a sentence naming ``what``
    ("The message store"); a constraint violation, also a DBAPIError, passes unchanged."""
    try:
        yield
    except IntegrityError:
        raise
    except (OperationalError, DBAPIError, OSError, ConnectionError) as exc:
        raise StoreUnavailableError(
            f"{what} cannot be reached ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "check that the database is running and HUB_DATABASE_URL is right."
        ) from exc
