"""A fake VNeID OpenID Connect provider, for tests and demos: ``python -m mocks.vneid``."""

from mocks.vneid.app import CITIZENS, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_app

__all__ = ["CITIZENS", "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "create_app"]
