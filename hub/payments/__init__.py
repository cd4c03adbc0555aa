"""Online fee payment: the ledger, verified result callbacks, reconciliation and refunds.

See docs/payments-and-post.md. Modules: ``ledger`` (tables), ``settlement`` (turning a verified
result into ``payment.completed`` and the portal's dossier state), ``callbacks`` (the HTTP endpoint),
``reconcile`` (QUERY and GET_BILL for what callbacks missed), ``cli`` (``hub payments``).
"""
