"""Adapter that delivers hub messages (payment and postal results) to the provincial one-stop system."""

from adapters.onestop.adapter import OneStopAdapter, create_adapter

__all__ = ["OneStopAdapter", "create_adapter"]
