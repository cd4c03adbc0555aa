"""Adapter for a payment platform: the national portal's payment platform or a bank gateway.

``signing`` computes and checks MaXacThuc, ``wire`` holds the platform's messages, ``client`` talks
HTTP to it, ``adapter`` answers ``payment.init`` and ``payment.refund``.
"""

from adapters.payment.adapter import PaymentPlatformAdapter, PaymentTiming, create_adapter
from hub.plugin import Plugin

__all__ = ["PaymentPlatformAdapter", "PaymentTiming", "create_adapter", "plugin"]

#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(name="payment", adapters={"payment_platform": create_adapter})
