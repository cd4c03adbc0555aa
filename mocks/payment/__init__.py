"""Fake payment platform with a payment page and result callbacks; see :mod:`mocks.payment.app`."""

from mocks.payment.app import DEFAULT_PARTNER_CODE, DEFAULT_SECRET, create_app

__all__ = ["DEFAULT_PARTNER_CODE", "DEFAULT_SECRET", "create_app"]
