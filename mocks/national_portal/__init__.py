"""Fake national public-services portal; see :mod:`mocks.national_portal.app`."""

from mocks.national_portal.app import create_app

__all__ = ["create_app"]
