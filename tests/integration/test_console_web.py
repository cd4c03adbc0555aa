"""The ops console over HTTP: logins and roles, overview, timeline, dead letters, replay and discard, audit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from hub.bootstrap import build_hub
from hub.console import include_console
from hub.settings import HubSettings
from tests.support.console import (
    ADMIN_PASSWORD,
    CONSOLE_SETTINGS,
    VIEWER,
    VIEWER_PASSWORD,
    csrf_of,
    dead_lettered_dossier,
    log_in,
    logged_in,
)
from tests.support.harness import RunningHub, eventually, running_hub
from tests.support.payloads import dossier, step

pytestmark = pytest.mark.integration


@pytest.fixture
async def console_hub(
    database_url: str, routes_dir: Path, portal_url: str, portal: httpx.Client
) -> AsyncIterator[RunningHub]:
    async with running_hub(
        database_url=database_url, routes_dir=routes_dir, portal_url=portal_url, **CONSOLE_SETTINGS
    ) as running:
        yield running


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/hub.db"


@pytest.fixture
async def sqlite_console_hub(
    sqlite_url: str, routes_dir: Path, portal_url: str, portal: httpx.Client
) -> AsyncIterator[RunningHub]:
    async with running_hub(
        database_url=sqlite_url, routes_dir=routes_dir, portal_url=portal_url, **CONSOLE_SETTINGS
    ) as running:
        yield running


async def test_unauthenticated_visitors_are_sent_to_the_login_page(sqlite_console_hub: RunningHub) -> None:
    async with httpx.AsyncClient(base_url=sqlite_console_hub.url) as anonymous:
        page = await anonymous.get("/console/dead-letters/national-portal?type=dossier.upserted")
        assert page.status_code == 303
        assert page.headers["location"] == "/console/login?next=" + quote(
            "/console/dead-letters/national-portal?type=dossier.upserted", safe=""
        )
        fragment = await anonymous.get("/console/overview", headers={"HX-Request": "true"})
        assert fragment.status_code == 401
        assert fragment.headers["HX-Redirect"].startswith("/console/login")
        replay = await anonymous.post("/console/dead-letters/national-portal/replay", data={"csrf": "x"})
        assert replay.status_code == 303
        assert replay.headers["location"].startswith("/console/login")
    async with httpx.AsyncClient(base_url=sqlite_console_hub.url, cookies={"hub_console": "eyJ1IjoiYSJ9.x"}) as forged:
        assert (await forged.get("/console")).status_code == 303
    async with httpx.AsyncClient(base_url=sqlite_console_hub.url) as anonymous:
        login = await anonymous.get("/console/login")
        assert login.status_code == 200
        assert 'name="password"' in login.text


async def test_a_wrong_password_is_refused_and_repeated_failures_are_throttled(
    sqlite_console_hub: RunningHub,
) -> None:
    async with httpx.AsyncClient(base_url=sqlite_console_hub.url) as client:
        token = csrf_of((await client.get("/console/login")).text)
        for _ in range(5):
            refused = await client.post(
                "/console/login", data={"username": "admin", "password": "guess", "csrf": token}
            )
            assert refused.status_code == 401
            assert "Tên đăng nhập hoặc mật khẩu không đúng." in refused.text
            assert "hub_console" not in refused.cookies
        throttled = await client.post(
            "/console/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf": token}
        )
        assert throttled.status_code == 429
        assert "thử lại sau" in throttled.text
        other = await log_in(client, VIEWER, VIEWER_PASSWORD)
        assert other.status_code == 303, "throttling one name must not lock out the others"
    metrics = (await sqlite_console_hub.client.get(f"{sqlite_console_hub.url}/metrics")).text
    assert 'hub_console_logins_total{method="local",outcome="refused"} 5.0' in metrics


async def test_an_operator_replays_a_dead_letter_and_it_reaches_the_portal(
    console_hub: RunningHub, portal: httpx.Client
) -> None:
    message_id, payload = await dead_lettered_dossier(console_hub, portal)
    code = payload["MaHoSo"]
    async with logged_in(console_hub) as admin:
        card = ""

        async def dead_letter_counted() -> bool:
            # The store says dead-lettered after RabbitMQ confirmed the DLQ copy, but a quorum queue's
            # message count can lag its confirms by a moment (a run of this test read 0 here once).
            nonlocal card
            card = (await admin.get("/console/overview")).text.split('data-target="national-portal"', 1)[1]
            return bool(re.search(r'data-field="dlq"><a href="/console/dead-letters/national-portal">1</a>', card))

        await eventually(dead_letter_counted, timeout=5)
        assert re.search(r'data-route="dossier-sync">.*?data-field="route-dlq">1<', card, re.S)

        dead = await admin.get("/console/dead-letters/national-portal")
        assert dead.status_code == 200
        assert "MaTTHC &#39;1.000894&#39;" in dead.text
        assert message_id[:8] in dead.text

        page = await admin.get(f"/console/messages/{message_id}")
        assert 'data-action="replay"' in page.text
        portal.delete("/_mock/faults")
        replay = await admin.post(
            f"/console/messages/{message_id}/replay", data={"csrf": csrf_of(page.text), "target": "national-portal"}
        )
        assert replay.status_code == 303
        assert replay.headers["location"] == f"/console/messages/{message_id}?done=replayed&n=1"

        async def delivered() -> bool:
            return await console_hub.delivery_state(message_id) == "delivered"

        await eventually(delivered)
        assert portal.get(f"/_mock/dossiers/{code}").json()["current"]["MaTTHC"] == "1.000894"
        events = (await console_hub.message(message_id))["events"]
        assert [(e["kind"], e["actor"]) for e in events] == [
            ("accepted", None),
            ("dead_lettered", None),
            ("replayed", "console:admin"),
            ("delivered", None),
        ]
        audit = await admin.get("/console/audit")
        assert "console:admin" in audit.text
        assert message_id[:8] in audit.text
        assert code in audit.text


async def test_replay_all_matching_a_filter_leaves_the_others_dead_lettered(
    sqlite_console_hub: RunningHub, portal: httpx.Client
) -> None:
    hub = sqlite_console_hub
    first, first_payload = await dead_lettered_dossier(hub, portal)
    second, _ = await dead_lettered_dossier(hub, portal)
    agency = first_payload["MaHoSo"]
    async with logged_in(hub) as admin:
        listing = await admin.get("/console/dead-letters/national-portal", params={"dossier": agency})
        assert re.search(r'data-field="matching">[^<]*\b1\b', listing.text)
        reason_key = re.search(r'data-reason="([0-9a-f]{16})"', listing.text)
        assert reason_key, "the reasons are grouped with a key"
        portal.delete("/_mock/faults")
        replay = await admin.post(
            "/console/dead-letters/national-portal/replay",
            data={"csrf": csrf_of(listing.text), "reason": reason_key.group(1), "dossier": agency, "type": ""},
        )
        assert replay.status_code == 303
        assert "done=replayed&n=1" in replay.headers["location"]

        async def delivered() -> bool:
            return await hub.delivery_state(first) == "delivered"

        await eventually(delivered)
        assert await hub.delivery_state(second) == "dead_lettered"


async def test_a_discard_needs_a_reason_and_records_it_with_who_did_it(
    sqlite_console_hub: RunningHub, portal: httpx.Client
) -> None:
    hub = sqlite_console_hub
    message_id, _ = await dead_lettered_dossier(hub, portal)
    async with logged_in(hub) as admin:
        csrf = csrf_of((await admin.get(f"/console/messages/{message_id}")).text)
        url = f"/console/messages/{message_id}/discard"
        empty = await admin.post(url, data={"csrf": csrf, "target": "national-portal", "reason": "  "})
        assert empty.status_code == 422
        assert await hub.delivery_state(message_id) == "dead_lettered"
        reason = "Hồ sơ đã được nộp lại bằng mã khác"
        done = await admin.post(url, data={"csrf": csrf, "target": "national-portal", "reason": reason})
        assert done.status_code == 303
        assert await hub.delivery_state(message_id) == "discarded"
        discarded = next(e for e in (await hub.message(message_id))["events"] if e["kind"] == "discarded")
        assert (discarded["detail"], discarded["actor"]) == (reason, "console:admin")
        again = await admin.post(url, data={"csrf": csrf, "target": "national-portal", "reason": reason})
        assert again.status_code == 409
        assert "not dead-lettered" in again.text


async def test_a_viewer_may_look_but_not_replay_or_discard(
    sqlite_console_hub: RunningHub, portal: httpx.Client
) -> None:
    hub = sqlite_console_hub
    message_id, _ = await dead_lettered_dossier(hub, portal)
    async with logged_in(hub, VIEWER, VIEWER_PASSWORD) as viewer:
        page = await viewer.get(f"/console/messages/{message_id}")
        assert page.status_code == 200
        assert 'data-action="replay"' not in page.text
        # The one form with the session's token is the logout (issue #17: logout takes the token too).
        assert page.text.count('name="csrf"') == 1
        assert re.search(r'action="/console/logout"><input type="hidden" name="csrf"', page.text)
        assert "Bạn có vai trò người xem" in page.text
        portal.delete("/_mock/faults")
        for path, form in (
            (f"/console/messages/{message_id}/replay", {"target": "national-portal"}),
            (f"/console/messages/{message_id}/discard", {"target": "national-portal", "reason": "x"}),
            ("/console/dead-letters/national-portal/replay", {}),
        ):
            refused = await viewer.post(path, data={"csrf": "anything", **form})
            assert refused.status_code == 403
            assert "chỉ vận hành viên (operator)" in refused.text
        assert await hub.delivery_state(message_id) == "dead_lettered"


async def test_a_delivery_in_doubt_is_marked_with_what_the_hub_will_do_about_it(
    sqlite_console_hub: RunningHub, portal: httpx.Client
) -> None:
    """The portal refused this dossier outright: no doubt. Once an attempt ends without an answer, the
    delivery shows that it may have arrived, and why that matters (the hub asks before sending again)."""
    hub = sqlite_console_hub
    message_id, _ = await dead_lettered_dossier(hub, portal)
    async with logged_in(hub, VIEWER, VIEWER_PASSWORD) as viewer:
        page = await viewer.get(f"/console/messages/{message_id}")
        assert 'data-field="in-doubt"' not in page.text
        await hub.hub.store.mark_dead_lettered(
            message_id, "national-portal", attempt=2, reason="(test) no answer within 3 s", in_doubt=True
        )
        page = await viewer.get(f"/console/messages/{message_id}")
        assert re.search(r'data-field="in-doubt" title="[^"]*hỏi hệ thống đích[^"]*">có thể đã tới đích<', page.text)
        english = await viewer.get(f"/console/messages/{message_id}?lang=en")
        hint = r'title="[^"]*asks the target whether it has the message[^"]*">may have arrived<'
        assert re.search(hint, english.text)
    assert (await hub.message(message_id))["deliveries"][0]["in_doubt"] is True


async def test_a_change_without_the_session_csrf_token_is_refused(
    sqlite_console_hub: RunningHub, portal: httpx.Client
) -> None:
    message_id, _ = await dead_lettered_dossier(sqlite_console_hub, portal)
    async with logged_in(sqlite_console_hub) as admin:
        refused = await admin.post(
            f"/console/messages/{message_id}/replay", data={"csrf": "not-the-token", "target": "national-portal"}
        )
        assert refused.status_code == 400
    assert await sqlite_console_hub.delivery_state(message_id) == "dead_lettered"


async def test_search_shows_a_dossier_timeline_with_status_names_and_masked_payload(
    sqlite_console_hub: RunningHub, portal: httpx.Client
) -> None:
    hub = sqlite_console_hub
    code = dossier()["MaHoSo"]
    first = (await hub.post("dossier.upserted", dossier(code, status=1))).json()["id"]

    async def delivered() -> bool:
        return await hub.delivery_state(first) == "delivered"

    await eventually(delivered)
    await hub.post("dossier.progress", step(code, 1, status=4))
    async with logged_in(hub) as admin:
        found = await admin.get("/console/search", params={"q": code})
        assert found.status_code == 303
        assert found.headers["location"] == f"/console/dossiers/{quote(code)}"
        timeline = await admin.get(found.headers["location"])
        assert "1 – Mới" in timeline.text
        assert "4 – Đang xử lý" in timeline.text
        assert "hub nhận tin" in timeline.text
        english = await admin.get(found.headers["location"], params={"lang": "en"})
        assert "4 – Processing" in english.text
        assert "Dossier timeline" in english.text
        by_id = await admin.get("/console/search", params={"q": first})
        assert by_id.headers["location"] == f"/console/messages/{first}"
        message = (await admin.get(by_id.headers["location"])).text
        assert "0900000001" not in message, "the phone number must be masked"
        assert "001000000001" not in message, "the ID number must be masked"
        assert "Nguyễn Thị Thử Nghiệm" not in message, "the applicant's name must be masked"
        assert "09******01" in message
        missing = await admin.get("/console/search", params={"q": "H15.50.05.13-990101-0001"})
        assert missing.status_code == 404
        assert "Dossier code (MaHoSo)" in missing.text or "Không tìm thấy" in missing.text


async def test_metrics_show_open_deliveries_and_target_health(console_hub: RunningHub, portal: httpx.Client) -> None:
    hub = console_hub
    delivered = (await hub.post("dossier.upserted", dossier())).json()["id"]

    async def done() -> bool:
        return await hub.delivery_state(delivered) == "delivered"

    await eventually(done)
    await dead_lettered_dossier(hub, portal)
    metrics = (await hub.client.get(f"{hub.url}/metrics")).text
    assert 'hub_deliveries_open{route="dossier-sync",state="dead_lettered",target="national-portal"} 1.0' in metrics
    assert 'hub_target_failing{target="national-portal"} 0.0' in metrics, "a rejection is not a failing target"
    last_success = re.search(r'hub_target_last_success_timestamp_seconds\{target="national-portal"\} (\S+)', metrics)
    assert last_success
    assert float(last_success.group(1)) > 1.7e9

    portal.post("/_mock/faults", json={"fail_next": 1000, "status": 503})
    waiting = (await hub.post("dossier.upserted", dossier())).json()["id"]

    async def retried() -> bool:
        return await hub.delivery_state(waiting) in {"retrying", "dead_lettered"}

    await eventually(retried)
    metrics = (await hub.client.get(f"{hub.url}/metrics")).text
    assert 'hub_target_failing{target="national-portal"} 1.0' in metrics
    async with logged_in(hub) as admin:
        card = (await admin.get("/console/overview")).text.split('data-target="national-portal"', 1)[1]
        assert 'data-field="health">Đang lỗi<' in card
        assert "503" in card, "the last failure's sentence is shown"


async def test_without_any_account_the_login_page_says_how_to_set_one(routes_dir: Path, tmp_path: Path) -> None:
    hub = build_hub(
        HubSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
            routes_dir=routes_dir,
            console_admin_password=None,
            console_users={},
            console_oidc_issuer=None,
        )
    )
    app = FastAPI()
    include_console(app, hub)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
            login = await client.get("/console/login", params={"lang": "en"})
            assert "HUB_CONSOLE_ADMIN_PASSWORD" in login.text
            assert "hub console hash-password" in login.text
            assert 'name="password"' not in login.text
            # No form is shown; a post with a valid form token is still refused.
            client.cookies.set("hub_console_login", app.state.console.login_forms.dumps({"t": "tok"}), path="/console")
            refused = await client.post("/console/login", data={"username": "admin", "password": "", "csrf": "tok"})
            assert refused.status_code == 401
    finally:
        await hub.aclose()


# ----------------------------------------------------------------------------- sessions (issue #17)


async def test_a_login_without_the_forms_token_is_refused(sqlite_console_hub: RunningHub) -> None:
    """Login CSRF: another site cannot log a browser in to an account of its choosing."""
    async with httpx.AsyncClient(base_url=sqlite_console_hub.url) as client:
        bare = await client.post("/console/login", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert bare.status_code == 400
        assert "Biểu mẫu đã cũ" in bare.text
        assert "hub_console" not in bare.cookies
    async with httpx.AsyncClient(base_url=sqlite_console_hub.url) as other_site:
        token = csrf_of((await other_site.get("/console/login")).text)
    async with httpx.AsyncClient(base_url=sqlite_console_hub.url) as victim:
        # A token of another browser is no good without that browser's cookie.
        forged = await victim.post(
            "/console/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf": token}
        )
        assert forged.status_code == 400
        assert (await log_in(victim, "admin", ADMIN_PASSWORD)).status_code == 303
        assert "hub_console_login" not in victim.cookies, "the form's cookie goes once the login is done"


async def test_logout_needs_the_token_and_ends_a_copied_cookie_too(sqlite_console_hub: RunningHub) -> None:
    async with logged_in(sqlite_console_hub) as admin:
        page = await admin.get("/console")
        assert page.status_code == 200
        copied = admin.cookies["hub_console"]
        refused = await admin.post("/console/logout", data={"csrf": "not-the-token"})
        assert refused.status_code == 400
        assert (await admin.get("/console")).status_code == 200, "a logout posted from elsewhere changes nothing"
        out = await admin.post("/console/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        assert (await admin.get("/console")).status_code == 303
    async with httpx.AsyncClient(base_url=sqlite_console_hub.url, cookies={"hub_console": copied}) as thief:
        stolen = await thief.get("/console")
        assert stolen.status_code == 303, "a copy of the cookie ends with the logout"
        assert stolen.headers["location"].startswith("/console/login")


async def test_a_session_cookie_that_is_not_ascii_is_no_login_and_no_server_error(
    sqlite_console_hub: RunningHub,
) -> None:
    for value in ("đã sửa.chữ-ký", "Zm9v.đ", "\u00e9t\u00e9"):
        raw = f"hub_console={value}; hub_console_login={value}".encode()
        async with httpx.AsyncClient(base_url=sqlite_console_hub.url, headers={b"Cookie": raw}) as client:
            page = await client.get("/console")
            assert page.status_code == 303, value
            login = await client.get("/console/login")
            assert login.status_code == 200, value
            refused = await client.post(
                "/console/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf": value}
            )
            assert refused.status_code == 400, value


async def test_console_cookies_are_secure_unless_the_setting_says_otherwise(routes_dir: Path, tmp_path: Path) -> None:
    """Outside --demo (which sets it false) the console's cookies carry Secure: the default is true."""
    assert HubSettings(_env_file=None).console_secure_cookie is True
    for secure in (True, False):
        explicit: dict[str, Any] = {} if secure else {"console_secure_cookie": False}
        hub = build_hub(
            HubSettings(
                database_url=f"sqlite+aiosqlite:///{tmp_path}/hub-{secure}.db",
                routes_dir=routes_dir,
                console_admin_password=ADMIN_PASSWORD,
                **explicit,
            )
        )
        await hub.store.migrate()
        app = FastAPI()
        include_console(app, hub)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as client:
                form = await client.get("/console/login")
                login = await client.post(
                    "/console/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf": csrf_of(form.text)}
                )
                assert login.status_code == 303, login.text
                for response in (form, login):
                    cookie = response.headers["set-cookie"]
                    assert ("; secure" in cookie.lower()) is secure, cookie
        finally:
            await hub.aclose()
