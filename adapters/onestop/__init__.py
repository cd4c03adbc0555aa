"""Adapter that delivers hub messages (payment and postal results) to the provincial one-stop system."""

from adapters.onestop.adapter import OneStopAdapter, create_adapter
from hub.plugin import Plugin

__all__ = ["OneStopAdapter", "create_adapter", "plugin"]

#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(name="onestop", adapters={"onestop": create_adapter})
