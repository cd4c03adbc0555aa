"""``hub payments``: look at payments and the results received, reconcile by hand.

No personal data is printed: a payment is a dossier code, amounts and the platform's references.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from adapters.payment.callbacks import build_payment_services
from adapters.payment.ledger import PaymentLedger
from hub.plugin import HubContext, HubOpener, run_command

__all__ = ["build_payments_app", "payment_commands"]


def payment_commands(open_hub: HubOpener) -> dict[str, typer.Typer]:
    """The plugin's ``hub`` sub-command groups (``Plugin.commands``)."""
    return {"payments": build_payments_app(open_hub)}


def _echo(rows: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> None:
    for row in rows:
        typer.echo(json.dumps(row, ensure_ascii=False) if as_json else line(row))


def build_payments_app(open_hub: HubOpener) -> typer.Typer:
    """``hub payments`` over the hub ``open_hub`` opens."""
    payments_app = typer.Typer(
        help="Online fee payments: the ledger, results received (and rejected), reconciliation.", no_args_is_help=True
    )

    @payments_app.command("list")
    def list_payments(
        state: Annotated[str | None, typer.Option(help="Only this state: initiated, paid, refunded, …")] = None,
        dossier: Annotated[str | None, typer.Option(help="Only this dossier (MaHoSo).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
        limit: Annotated[int, typer.Option(help="At most this many payments (--dossier lists all of its own).")] = 100,
    ) -> None:
        """List payments, newest first."""

        async def action(context: HubContext) -> None:
            ledger = PaymentLedger(context.engine)
            payments = await ledger.for_dossier(dossier) if dossier else await ledger.recent(state=state, limit=limit)
            if state and dossier:
                payments = [p for p in payments if p.state == state]
            _echo(
                [p.as_json() for p in payments],
                as_json,
                lambda p: (
                    f"{p['MaThamChieu']}  {p['MaHoSo']}  {p['SoTien']} {p['MaTienTe']}  {p['state']}"
                    f"  MaGiaoDich={p['MaGiaoDich'] or '-'}  {p['created_at']}"
                ),
            )
            if not as_json:
                typer.echo(f"{len(payments)} payment(s).")

        run_command(open_hub, action)

    @payments_app.command("show")
    def show(
        reference: Annotated[str, typer.Argument(help="MaThamChieu of a payment, or a dossier code (MaHoSo).")],
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        """A payment (or every payment of a dossier) with every result received for it and what the hub did."""

        async def action(context: HubContext) -> int:
            ledger = PaymentLedger(context.engine)
            payment = await ledger.get(reference)
            payments = [payment] if payment is not None else await ledger.for_dossier(reference)
            if not payments:
                typer.echo(f"No payment has MaThamChieu or MaHoSo {reference}.", err=True)
                return 1
            for item in payments:
                results = [r.as_json() for r in reversed(await ledger.results(reference=item.reference))]
                if as_json:
                    typer.echo(json.dumps({**item.as_json(), "results": results}, ensure_ascii=False))
                    continue
                for key, value in item.as_json().items():
                    typer.echo(f"{key:>22}: {value}")
                for result in results:
                    typer.echo(
                        f"    {result['received_at']} {result['channel']} MaLoi={result['MaLoi']} -> "
                        f"{result['outcome']}{' (' + result['reason'] + ')' if result['reason'] else ''} "
                        f"answered {result['answer']}"
                    )
            return 0

        raise typer.Exit(run_command(open_hub, action))

    @payments_app.command("rejections")
    def rejections(
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
        limit: Annotated[int, typer.Option(help="At most this many results, the newest first.")] = 100,
    ) -> None:
        """Results the hub refused (bad MaXacThuc, replayed MaGiaoDich, wrong amount, unknown MaThamChieu …)."""

        async def action(context: HubContext) -> None:
            rows = [r.as_json() for r in await PaymentLedger(context.engine).results(outcome="rejected", limit=limit)]
            _echo(
                rows,
                as_json,
                lambda r: (
                    f"{r['received_at']}  {r['reason']}  MaThamChieu={r['MaThamChieu']}  answered {r['answer']}\n"
                    f"    {r['detail']}"
                ),
            )
            if not as_json:
                typer.echo(f"{len(rows)} rejected result(s).")

        run_command(open_hub, action)

    @payments_app.command("reconcile")
    def reconcile(
        every: Annotated[float, typer.Option(help="Repeat every this many seconds (0: one pass).")] = 0.0,
        reference: Annotated[
            str | None, typer.Option(help="QUERY this payment (MaThamChieu) now, even if it is not due yet.")
        ] = None,
    ) -> None:
        """QUERY payments without a result, settle what the platform says was paid, fetch receipts (GET_BILL).

        Every ingress process already does this every `reconcile_interval`; this runs it by hand.
        """

        async def action(context: HubContext) -> None:
            services = build_payment_services(context)
            try:
                if services.reconciler is None:
                    problems = " ".join(services.problems)
                    typer.echo(f"No payment platform target is configured. {problems}".strip(), err=True)
                    raise typer.Exit(2)
                if reference is not None:
                    typer.echo((await services.reconciler.check_now(reference)).summary())
                    return
                while True:
                    report = await services.reconciler.run_once()
                    typer.echo(report.summary())
                    if every <= 0:
                        return
                    await asyncio.sleep(every)
            finally:
                await services.aclose()

        run_command(open_hub, action, broker=True)

    return payments_app
