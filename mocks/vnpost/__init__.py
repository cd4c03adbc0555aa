"""Fake VNPost API with parcels moving on a test-controlled clock; see :mod:`mocks.vnpost.app`."""

from mocks.vnpost.app import DEFAULT_CALLBACK_TOKEN, DEFAULT_PASSWORD, DEFAULT_USERNAME, create_app

__all__ = ["DEFAULT_CALLBACK_TOKEN", "DEFAULT_PASSWORD", "DEFAULT_USERNAME", "create_app"]
