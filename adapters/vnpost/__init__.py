"""Adapter for VNPost (Bưu điện Việt Nam): parcels for dossiers and results, and their tracking.

``wire`` holds VNPost's messages, ``client`` talks HTTP to it (token cached, refreshed on 401),
``adapter`` answers ``postal.order`` and ``postal.cancel`` and reads tracking for the hub's poller.
"""

from adapters.vnpost.adapter import VNPostAdapter, create_adapter

__all__ = ["VNPostAdapter", "create_adapter"]
