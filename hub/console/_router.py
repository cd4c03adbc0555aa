"""The console's pages and actions (server-rendered with Jinja2, refreshed by htmx) and its assets.

The endpoints are module-level; what they need comes through the dependencies of
:mod:`hub.console._state`, from the :class:`ConsoleState` that :func:`include_console` puts on the app.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at run time.

import os
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import orjson
import structlog
from fastapi import APIRouter, FastAPI, Form, Query
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from hub.bootstrap import Hub
from hub.console import _login
from hub.console._auth import Session
from hub.console._overview import build_overview
from hub.console._state import PREFIX, ConsoleHub, ConsoleState, Viewer, guarded
from hub.errors import HubError
from hub.observability import mask_payload
from hub.services import DeadLetterFilter, discard, reason_group, reason_key, replay_matching, replay_message
from hub.store import DeliveryState
from schemas.dossier import DOSSIER_CODE_PATTERN

__all__ = ["include_console", "router"]

log = structlog.get_logger(__name__)

REFRESH_SECONDS = 5
DEAD_LETTERS_SHOWN = 200
DEAD_LETTERS_SCANNED = 5000
_MESSAGE_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class _Assets(StaticFiles):
    """The console's scripts and styles, cached by browsers for an hour."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


router = APIRouter(prefix=PREFIX, include_in_schema=False)
router.include_router(_login.router)
# A mount takes no prefix from its router: the full path is spelled out.
router.mount(f"{PREFIX}/static", _Assets(directory=Path(__file__).parent / "static"), name="console-static")


def include_console(app: FastAPI, hub: Hub) -> None:
    """Serve the ops console of ``hub`` under ``/console`` in ``app`` (the ingress calls this once)."""
    app.state.console = ConsoleState.from_hub(hub)
    app.include_router(router)


# ---------------------------------------------------------------------- looking


@router.get("")
async def overview_page(page: Viewer, hub: ConsoleHub) -> Response:
    overview = await build_overview(hub)
    return page.render("overview.html", overview=overview, refresh=REFRESH_SECONDS)


@router.get("/overview")
async def overview_fragment(page: Viewer, hub: ConsoleHub) -> Response:
    overview = await build_overview(hub)
    return page.render("_overview.html", overview=overview, refresh=REFRESH_SECONDS)


@router.get("/search")
async def search(page: Viewer, hub: ConsoleHub, q: str = "") -> Response:
    q = q.strip()
    if not q:
        return page.render("search.html", q=q, not_found=False)
    try:
        if _MESSAGE_ID.match(q) and await hub.store.message_envelope(q.lower()) is not None:
            return RedirectResponse(page.url(f"/messages/{q.lower()}"), status_code=303)
        if DOSSIER_CODE_PATTERN.match(q) and await hub.store.dossier_messages(q, limit=1):
            return RedirectResponse(page.url(f"/dossiers/{quote(q)}"), status_code=303)
    except HubError as exc:
        return page.render("error.html", status_code=503, sentence=str(exc))
    return page.render("search.html", status_code=404, q=q, not_found=True)


@router.get("/dossiers/{dossier_code}")
async def dossier(page: Viewer, hub: ConsoleHub, dossier_code: str) -> Response:
    try:
        views = await hub.store.dossier_messages(dossier_code)
    except HubError as exc:
        return page.render("error.html", status_code=503, sentence=str(exc))
    if not views:
        return page.render("search.html", status_code=404, q=dossier_code, not_found=True)
    timeline = sorted(
        ((view, event) for view in views for event in view.events),
        key=lambda item: (item[1].at, item[0].envelope.seq),
    )
    return page.render("dossier.html", code=dossier_code, views=views, timeline=timeline)


@router.get("/messages/{message_id}")
async def message(page: Viewer, hub: ConsoleHub, message_id: str) -> Response:
    try:
        view = await hub.store.message(message_id)
    except HubError as exc:
        return page.render("error.html", status_code=503, sentence=str(exc))
    if view is None:
        return page.render("search.html", status_code=404, q=message_id, not_found=True)
    payload = orjson.dumps(mask_payload(view.envelope.payload), option=orjson.OPT_INDENT_2).decode()
    timeline = [(view, event) for event in view.events]
    return page.render("message.html", view=view, timeline=timeline, payload=payload, DEAD=DeliveryState.DEAD_LETTERED)


@router.get("/dead-letters")
async def dead_letter_targets(page: Viewer, hub: ConsoleHub) -> Response:
    try:
        counts = await hub.store.open_counts()
    except HubError as exc:
        return page.render("error.html", status_code=503, sentence=str(exc))
    targets = [
        (t, sum(n for (tt, _r, s), n in counts.items() if tt == t and s == DeliveryState.DEAD_LETTERED))
        for t in hub.routes.delivery_targets()
    ]
    return page.render("dead_letter_targets.html", targets=targets)


@router.get("/dead-letters/{target}")
async def dead_letters(
    page: Viewer,
    hub: ConsoleHub,
    target: str,
    reason: Annotated[str | None, Query()] = None,
    type: Annotated[str | None, Query()] = None,
    dossier: Annotated[str | None, Query()] = None,
) -> Response:
    if target not in hub.routes.targets:
        return page.render("error.html", status_code=404, sentence=f"There is no target '{target}'.")
    selection = DeadLetterFilter(reason or None, type or None, (dossier or "").strip() or None)
    try:
        rows = await hub.store.dead_letters(target, limit=DEAD_LETTERS_SCANNED)
    except HubError as exc:
        return page.render("error.html", status_code=503, sentence=str(exc))
    groups: dict[str, tuple[str, int]] = {}  # reason key -> (reason, count)
    for _envelope, delivery in rows:
        key = reason_key(delivery.last_error)
        groups[key] = (reason_group(delivery.last_error), groups.get(key, ("", 0))[1] + 1)
    matching = [(e, d) for e, d in rows if selection.matches(e, d)]
    return page.render(
        "dead_letters.html",
        target=target,
        groups=sorted(groups.items(), key=lambda item: -item[1][1]),
        rows=matching[:DEAD_LETTERS_SHOWN],
        total=len(matching),
        scanned_all=len(rows) < DEAD_LETTERS_SCANNED,
        selection=selection,
        types=sorted({e.type for e, _ in rows}),
    )


@router.get("/audit")
async def audit(page: Viewer, hub: ConsoleHub) -> Response:
    try:
        entries = await hub.store.operator_events(hub.routes.targets, limit=200)
    except HubError as exc:
        return page.render("error.html", status_code=503, sentence=str(exc))
    return page.render("audit.html", entries=entries)


# ---------------------------------------------------------------------- changing (operators only)


@router.post("/messages/{message_id}/replay")
async def replay_one(
    page: Viewer,
    hub: ConsoleHub,
    message_id: str,
    target: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    async def action(session: Session) -> Response:
        result = await replay_message(hub, message_id, target=target or None, actor=session.actor)
        for _, replayed_target in result.replayed:
            hub.metrics.operator_actions.labels("replay", replayed_target).inc()
        log.info("console_replayed", actor=session.actor, message_id=message_id, count=len(result.replayed))
        if not result.replayed:
            return page.render("error.html", status_code=409, sentence=" ".join(result.skipped))
        url = page.url(f"/messages/{message_id}", done="replayed", n=len(result.replayed))
        return RedirectResponse(url, status_code=303)

    return await guarded(page, csrf, action)


@router.post("/messages/{message_id}/discard")
async def discard_one(
    page: Viewer,
    hub: ConsoleHub,
    message_id: str,
    target: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    async def action(session: Session) -> Response:
        why = " ".join(reason.split())
        if not why:
            return page.render(
                "error.html",
                status_code=422,
                sentence="Say why the message is discarded; the reason is kept.",
            )
        done = await discard(hub, message_id, target, actor=session.actor, reason=why[:1000])
        if not done:
            sentence = f"Message {message_id} to {target} is not dead-lettered (any more); nothing was discarded."
            return page.render("error.html", status_code=409, sentence=sentence)
        hub.metrics.operator_actions.labels("discard", target).inc()
        log.info("console_discarded", actor=session.actor, message_id=message_id, target=target)
        return RedirectResponse(page.url(f"/messages/{message_id}", done="discarded"), status_code=303)

    return await guarded(page, csrf, action)


@router.post("/dead-letters/{target}/replay")
async def replay_filtered(
    page: Viewer,
    hub: ConsoleHub,
    target: str,
    reason: Annotated[str, Form()] = "",
    type: Annotated[str, Form()] = "",
    dossier: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    async def action(session: Session) -> Response:
        if target not in hub.routes.targets:
            return page.render("error.html", status_code=404, sentence=f"There is no target '{target}'.")
        selection = DeadLetterFilter(reason or None, type or None, dossier.strip() or None)
        result = await replay_matching(hub, target, selection, actor=session.actor)
        hub.metrics.operator_actions.labels("replay", target).inc(len(result.replayed))
        log.info(
            "console_replayed_matching",
            actor=session.actor,
            target=target,
            count=len(result.replayed),
            message_type=selection.message_type,
            dossier_prefix=selection.dossier_code,
        )
        url = page.url(f"/dead-letters/{target}", done="replayed", n=len(result.replayed))
        return RedirectResponse(url, status_code=303)

    return await guarded(page, csrf, action)
