"""Accounts and helpers shared by the console's integration and browser tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from hub.console._auth import hash_password
from tests.support.harness import RunningHub, eventually
from tests.support.payloads import dossier

ADMIN_PASSWORD = "test-admin-password-not-a-secret"
VIEWER = "lan"
VIEWER_PASSWORD = "test-viewer-password-not-a-secret"
REJECTED_PROCEDURE = "1.000894"  # the mock portal is told to reject this MaTTHC

#: running_hub(**CONSOLE_SETTINGS): admin (operator, plain password hashed at start) and a viewer.
CONSOLE_SETTINGS: dict[str, Any] = {
    "console_admin_password": ADMIN_PASSWORD,
    "console_users": {VIEWER: "viewer:" + hash_password(VIEWER_PASSWORD)},
    "console_secret_key": "test-console-signing-key-not-a-secret-0123456789",
}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@asynccontextmanager
async def logged_in(
    hub: RunningHub, user: str = "admin", password: str = ADMIN_PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client logged in to the console (its cookie jar holds the session), through the login form
    and its token."""
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        response = await log_in(client, user, password)
        assert response.status_code == 303, response.text
        yield client


async def log_in(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    """Open the login page (which sets the form's token cookie) and post the form with its token."""
    form = await client.get("/console/login")
    assert form.status_code in (200, 303), form.text
    token = csrf_of(form.text) if form.status_code == 200 else ""
    return await client.post("/console/login", data={"username": user, "password": password, "csrf": token})


async def dead_lettered_dossier(hub: RunningHub, portal: httpx.Client, **fields: Any) -> tuple[str, dict[str, Any]]:
    """Post a dossier the mock portal rejects; return its message id once it is dead-lettered."""
    portal.post("/_mock/faults", json={"reject_procedures": [REJECTED_PROCEDURE]})
    payload = dossier(MaTTHC=REJECTED_PROCEDURE, TenTTHC="Đăng ký kết hôn", **fields)
    response = await hub.post("dossier.upserted", payload)
    assert response.status_code == 202, response.text
    message_id = str(response.json()["id"])

    async def dead() -> bool:
        return await hub.delivery_state(message_id) == "dead_lettered"

    await eventually(dead)
    return message_id, payload
