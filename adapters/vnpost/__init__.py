"""Adapter for VNPost (Bưu điện Việt Nam): parcels for dossiers and results, and their tracking.

``wire`` holds VNPost's messages, ``client`` talks HTTP to it (token cached, refreshed on 401),
``adapter`` answers ``postal.order`` and ``postal.cancel`` and reads tracking for the hub's poller.
"""

from adapters.vnpost.adapter import VNPostAdapter, create_adapter
from hub.plugin import Plugin

__all__ = ["VNPostAdapter", "create_adapter", "plugin"]

#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(name="vnpost", adapters={"vnpost": create_adapter})
