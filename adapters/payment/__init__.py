"""Plugin for a payment platform: the national portal's payment platform or a bank gateway.

``signing`` computes and checks MaXacThuc, ``wire`` holds the platform's messages, ``client`` talks
HTTP to it, ``adapter`` answers ``payment.init`` and ``payment.refund``. The hub side of online
payment is here too: ``tables`` and ``ledger`` (the plugin's own tables), ``settlement`` (a verified
result becomes ``payment.completed`` and the portal's dossier state), ``reconcile`` (QUERY and
GET_BILL for what callbacks missed), ``callbacks`` (``POST /v1/callbacks/payment`` and the
reconciliation loop of an ingress process) and ``cli`` (``hub payments``). See docs/payments-and-post.md.
"""

from adapters.payment.adapter import PaymentPlatformAdapter, PaymentTiming, create_adapter
from adapters.payment.callbacks import extend
from adapters.payment.cli import payment_commands
from adapters.payment.tables import PaymentTables
from hub.plugin import Plugin

__all__ = ["PaymentPlatformAdapter", "PaymentTiming", "create_adapter", "plugin"]

#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(
    name="payment",
    adapters={"payment_platform": create_adapter},
    extend=extend,
    commands=payment_commands,
    tables=PaymentTables.metadata,
)
