"""Plugin for VNPost (Bưu điện Việt Nam): parcels for dossiers and results, and their tracking.

``wire`` holds VNPost's messages, ``client`` talks HTTP to it (token cached, refreshed on 401),
``adapter`` answers ``postal.order`` and ``postal.cancel``; ``tables`` and ``shipments`` are the
shipment book in the hub's database, ``tracking`` turns callbacks and polls into
``postal.status_changed`` in order per ItemCode, ``callbacks`` is what an ingress process gets
(``POST /v1/callbacks/vnpost``, the polling loop), ``cli`` the ``hub post`` commands.
See docs/payments-and-post.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.vnpost.adapter import VNPostAdapter, create_adapter
from adapters.vnpost.callbacks import extend_ingress
from adapters.vnpost.cli import create_post_app
from adapters.vnpost.tables import metadata
from hub.plugin import HubOpener, Plugin

if TYPE_CHECKING:
    from collections.abc import Mapping

    import typer

__all__ = ["VNPostAdapter", "create_adapter", "plugin"]


def _commands(open_hub: HubOpener) -> Mapping[str, typer.Typer]:
    return {"post": create_post_app(open_hub)}


#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(
    name="vnpost",
    adapters={"vnpost": create_adapter},
    extend=extend_ingress,
    commands=_commands,
    tables=metadata,
)
