"""Postal delivery through VNPost: the shipment book and tracking (callbacks and polling).

See docs/payments-and-post.md. Modules: ``shipments`` (tables), ``tracking`` (tracking events in,
``postal.status_changed`` out, in order per ItemCode), ``cli`` (``hub post``).
"""
