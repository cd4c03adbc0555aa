"""Adapter for the national public-services portal (Cổng Dịch vụ công quốc gia).

``client`` talks HTTP to the NGSP/LGSP gateway, ``wire`` holds the request bodies,
``mapping`` turns canonical envelopes into them.
"""

from adapters.national_portal.adapter import NationalPortalAdapter, create_adapter
from hub.plugin import Plugin

__all__ = ["NationalPortalAdapter", "create_adapter", "plugin"]

#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(name="national_portal", adapters={"national_portal": create_adapter})
