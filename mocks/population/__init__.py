"""A fake national population database (SOAP), for tests and demos: ``python -m mocks.population``."""

from mocks.population.app import DEFAULT_INTEGRATION_CODE, create_app

__all__ = ["DEFAULT_INTEGRATION_CODE", "create_app"]
