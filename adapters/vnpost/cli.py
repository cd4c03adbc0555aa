"""``hub post``: look at VNPost parcels and their tracking, poll by hand.

No personal data is printed: a parcel is a dossier code, an ItemCode and statuses.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from adapters.vnpost.shipments import ShipmentBook
from adapters.vnpost.tracking import open_vnpost_targets
from hub.plugin import HubContext, HubOpener, run_command

__all__ = ["create_post_app"]


def create_post_app(open_hub: HubOpener) -> typer.Typer:
    """The ``hub post`` command group, over hubs opened with ``open_hub``."""
    post_app = typer.Typer(help="Postal delivery through VNPost: parcels, tracking, polling.", no_args_is_help=True)

    @post_app.command("list")
    def list_parcels(
        state: Annotated[str | None, typer.Option(help="Only this state: open, delivered, cancelled, failed.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
        limit: Annotated[int, typer.Option(help="At most this many parcels, the newest first.")] = 100,
    ) -> None:
        """List parcels, newest first."""

        async def action(context: HubContext) -> None:
            parcels = await ShipmentBook(context.engine).recent(state=state, limit=limit)
            for parcel in parcels:
                row = parcel.as_json()
                if as_json:
                    typer.echo(json.dumps(row, ensure_ascii=False))
                else:
                    typer.echo(
                        f"{row['ItemCode'] or '-'}  {row['MaHoSo']}  {row['Direction']}  {row['state']}  "
                        f"status={row['Status']} sent_on={row['emitted_status']}  {row['created_at']}"
                    )
            if not as_json:
                typer.echo(f"{len(parcels)} parcel(s).")

        run_command(open_hub, action)

    @post_app.command("show")
    def show(
        key: Annotated[str, typer.Argument(help="ItemCode of a parcel, or a dossier code (MaHoSo).")],
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        """A parcel (or every parcel of a dossier) with every tracking status and how it came (callback/poll)."""

        async def action(context: HubContext) -> int:
            book = ShipmentBook(context.engine)
            parcel = await book.by_item_code(key)
            parcels = [parcel] if parcel is not None else await book.for_dossier(key)
            if not parcels:
                typer.echo(f"No parcel has ItemCode or MaHoSo {key}.", err=True)
                return 1
            for item in parcels:
                events = await book.events(item.item_code) if item.item_code else []
                if as_json:
                    history = [{**e.as_event(), "channel": e.channel} for e in events]
                    typer.echo(json.dumps({**item.as_json(), "events": history}, ensure_ascii=False))
                    continue
                for name, value in item.as_json().items():
                    typer.echo(f"{name:>15}: {value}")
                for event in events:
                    typer.echo(f"    {event.event_time} {event.status} {event.status_name} ({event.channel})")
            return 0

        raise typer.Exit(run_command(open_hub, action))

    @post_app.command("track")
    def track(
        every: Annotated[float, typer.Option(help="Repeat every this many seconds (0: one pass).")] = 0.0,
    ) -> None:
        """Poll getOrderTracking for quiet parcels and send on every status not yet sent.

        Every ingress process already does this every `poll_interval`; this runs it by hand.
        """

        async def action(context: HubContext) -> None:
            targets = open_vnpost_targets(context)
            try:
                if targets.tracker is None:
                    problems = " ".join(targets.problems)
                    typer.echo(f"No VNPost target is configured. {problems}".strip(), err=True)
                    raise typer.Exit(2)
                while True:
                    report = await targets.tracker.poll_once()
                    typer.echo(report.summary())
                    if every <= 0:
                        return
                    await asyncio.sleep(every)
            finally:
                await targets.aclose()

        run_command(open_hub, action, broker=True)

    return post_app
