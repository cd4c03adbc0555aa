"""Contract tests of the national portal adapter against the fake portal, over real sockets.

Every failure the adapter can meet is provoked with the mock's fault knobs and must come out
as the hub's TransientDeliveryError or PermanentDeliveryError, with an actionable reason.
"""

from __future__ import annotations

import asyncio
import socket
import unicodedata
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from adapters.national_portal import NationalPortalAdapter, create_adapter
from adapters.national_portal.client import transport_failure
from hub.adapter import Adapter, DeliveryContext
from hub.envelope import Envelope
from hub.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from hub.plugin import parse_retry_after
from tests.contract.conftest import AdapterFactory, MockPortalControl

CODE = "H15.50.05.13-261008-0975"
APPLICANT = "Nguyễn Thị Hồng Nhung"
PERSONAL_ID = "001203004567"
PHONE = "0912345678"
EMAIL = "nhung.nguyen@example.vn"
NEW = DeliveryContext(target="national-portal", attempt=1)
KNOWN = DeliveryContext(target="national-portal", attempt=1, target_has_dossier=True)


def dossier_payload(code: str = CODE, status: int = 1, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "MaHoSo": code,
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "G09-TP03",
        "TenLinhVuc": "Hộ tịch",
        "KenhThucHien": 2,
        "ChuHoSo": APPLICANT,
        "LoaiDoiTuong": 1,
        "SoDienThoai": PHONE,
        "Email": EMAIL,
        "NgayTiepNhan": "20261008083000",
        "NgayHenTra": "20261009170000",
        "TrangThaiHoSo": status,
        "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": PERSONAL_ID}],
    }
    payload.update(changes)
    return payload


def upserted(payload: dict[str, Any]) -> Envelope:
    return Envelope(type="dossier.upserted", source="onestop", dossier_code=payload["MaHoSo"], payload=payload)


def progress(code: str = CODE, n: int = 1, status: int = 4) -> Envelope:
    payload = {
        "MaHoSo": code,
        "NguoiXuLy": "Trần Văn Bình",
        "ChucDanh": "Công chức tư pháp - hộ tịch",
        "ThoiDiemXuLy": f"202610081{n // 60:01d}{n % 60:02d}00",
        "PhongBanXuLy": "Bộ phận một cửa",
        "NoiDungXuLy": f"Bước xử lý {n}",
        "TrangThai": status,
    }
    return Envelope(type="dossier.progress", source="onestop", dossier_code=code, payload=payload)


def assert_no_personal_data(reason: str) -> None:
    for value in (APPLICANT, PERSONAL_ID, PHONE, EMAIL):
        assert value not in reason


async def create_dossier(adapter: NationalPortalAdapter, code: str = CODE) -> None:
    await adapter.deliver(upserted(dossier_payload(code)), NEW)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the adapter's contract -------------------------------------------------------------------


def test_adapter_implements_the_hub_protocol(adapter: NationalPortalAdapter) -> None:
    assert isinstance(adapter, Adapter)
    assert adapter.name == "national_portal"
    assert adapter.max_batch == {"dossier.progress": 10}


async def test_create_then_already_exists_is_resent_as_update(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await adapter.deliver(upserted(dossier_payload(status=1)), NEW)
    # The hub lost track (e.g. a replay): it sends a create again; the portal says "đã tồn tại".
    await adapter.deliver(upserted(dossier_payload(status=2)), NEW)

    calls = await mock_portal.calls()
    assert [(c["isUpdating"], c["outcome"]) for c in calls] == [
        (False, "accepted"),
        (False, "rejected"),
        (True, "accepted"),
    ]
    assert "đã tồn tại" in calls[1]["message"]
    dossier = await mock_portal.dossier(CODE)
    assert dossier["status_history"] == [1, 2]
    assert dossier["current"]["TrangThaiHoSo"] == 2


async def test_target_has_dossier_sends_an_update_directly(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await create_dossier(adapter)
    await adapter.deliver(upserted(dossier_payload(status=4)), KNOWN)

    calls = await mock_portal.calls()
    assert [(c["isUpdating"], c["outcome"]) for c in calls] == [(False, "accepted"), (True, "accepted")]
    assert (await mock_portal.dossier(CODE))["status_history"] == [1, 4]


async def test_text_is_sent_in_nfc(adapter: NationalPortalAdapter, mock_portal: MockPortalControl) -> None:
    decomposed = unicodedata.normalize("NFD", "Đăng ký khai sinh")
    await adapter.deliver(upserted(dossier_payload(TenTTHC=decomposed)), NEW)
    sent = (await mock_portal.calls())[0]["body"]["data"][0]["TenTTHC"]
    assert sent == unicodedata.normalize("NFC", decomposed)


async def test_single_progress_step(adapter: NationalPortalAdapter, mock_portal: MockPortalControl) -> None:
    await create_dossier(adapter)
    await adapter.deliver(progress(n=1), NEW)

    calls = await mock_portal.calls()
    assert calls[-1]["service"] == "CapNhatTienDoHoSoMC"
    assert calls[-1]["outcome"] == "accepted"
    assert [s["NoiDungXuLy"] for s in (await mock_portal.dossier(CODE))["steps"]] == ["Bước xử lý 1"]


async def test_batch_of_ten_progress_steps_is_one_call(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await create_dossier(adapter)
    await adapter.deliver_batch([progress(n=i) for i in range(1, 11)], NEW)

    calls = await mock_portal.calls()
    assert len(calls) == 2
    assert calls[1]["service"] == "CapNhatTienDoHoSoMC"
    assert len(calls[1]["body"]["data"]) == 10
    assert calls[1]["outcome"] == "accepted"
    assert len((await mock_portal.dossier(CODE))["steps"]) == 10


async def test_batch_of_eleven_is_refused_by_adapter_and_portal(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await create_dossier(adapter)
    steps = [progress(n=i) for i in range(1, 12)]
    with pytest.raises(ValueError, match="at most 10"):
        await adapter.deliver_batch(steps, NEW)
    assert len(await mock_portal.calls()) == 1  # nothing was sent

    # And the portal itself refuses 11 steps in one call.
    token = await mock_portal.token()
    response = await mock_portal.http.post(
        "/dvcqg/CapNhatTienDoHoSoMC",
        json={"data": [s.payload for s in steps]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json()["error_code"] == -1
    assert "10" in response.json()["message"]


async def test_batch_with_another_type_is_refused(adapter: NationalPortalAdapter) -> None:
    with pytest.raises(ValueError, match=r"dossier\.progress"):
        await adapter.deliver_batch([progress(), upserted(dossier_payload())], NEW)


async def test_empty_batch_sends_nothing(adapter: NationalPortalAdapter, mock_portal: MockPortalControl) -> None:
    await adapter.deliver_batch([], NEW)
    assert await mock_portal.calls() == []


async def test_unknown_message_type_is_permanent(adapter: NationalPortalAdapter) -> None:
    envelope = Envelope(type="payment.settled", source="onestop", payload={"MaHoSo": CODE})
    with pytest.raises(PermanentDeliveryError, match=r"payment\.settled") as caught:
        await adapter.deliver(envelope, NEW)
    assert envelope.id in caught.value.reason


async def test_check_fetches_a_token(adapter: NationalPortalAdapter, mock_portal: MockPortalControl) -> None:
    await adapter.check()
    assert (await mock_portal.stats())["tokens_issued"] == 1


# --- business rejections (HTTP 200, error_code -1) -------------------------------------------


async def test_unknown_procedure_is_permanent_with_the_portals_message(
    adapter: NationalPortalAdapter,
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await adapter.deliver(upserted(dossier_payload(MaTTHC="9.999999")), NEW)
    reason = caught.value.reason
    assert CODE in reason
    assert "MaTTHC '9.999999' không có trong danh mục thủ tục hành chính" in reason
    assert reason.endswith("Fix the dossier.")
    assert caught.value.status_code == 200
    assert_no_personal_data(reason)


async def test_rejected_procedure_knob(adapter: NationalPortalAdapter, mock_portal: MockPortalControl) -> None:
    await mock_portal.set_faults(reject_procedures=["1.001193"])
    with pytest.raises(PermanentDeliveryError, match=r"1\.001193"):
        await create_dossier(adapter)


async def test_update_rejected_after_already_exists_says_so(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await create_dossier(adapter)
    await mock_portal.set_faults(reject_procedures=["1.000894"])
    with pytest.raises(PermanentDeliveryError) as caught:
        await adapter.deliver(upserted(dossier_payload(MaTTHC="1.000894", TenTTHC="Đăng ký kết hôn")), NEW)
    # The create was refused as "đã tồn tại", the update for the rejected procedure.
    assert "sent as an update" in caught.value.reason
    assert [c["isUpdating"] for c in await mock_portal.calls()] == [False, False, True]


async def test_progress_for_unknown_dossier_is_permanent(adapter: NationalPortalAdapter) -> None:
    with pytest.raises(PermanentDeliveryError, match="không tồn tại") as caught:
        await adapter.deliver(progress(), NEW)
    assert CODE in caught.value.reason


async def test_business_error_knob_is_permanent_and_masks_echoed_personal_data(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await mock_portal.set_faults(
        error_next=1, error_message=f"Chủ hồ sơ {APPLICANT} (SĐT {PHONE}, {EMAIL}) không khớp CSDL dân cư"
    )
    with pytest.raises(PermanentDeliveryError) as caught:
        await create_dossier(adapter)
    reason = caught.value.reason
    assert "không khớp CSDL dân cư" in reason
    assert CODE in reason
    assert_no_personal_data(reason)


async def test_invalid_payload_is_permanent_without_personal_data(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    payload = dossier_payload(SoDienThoai="09-bad-phone", DinhDanhCHS=[{"LoaiDinhDanh": 1, "SoDinhDanh": "12345"}])
    with pytest.raises(PermanentDeliveryError) as caught:
        await adapter.deliver(upserted(payload), NEW)
    reason = caught.value.reason
    assert "SoDienThoai" in reason
    assert "SoDinhDanh" in reason
    assert "09-bad-phone" not in reason
    assert "12345" not in reason
    assert_no_personal_data(reason)
    assert await mock_portal.calls() == []


# --- transport and HTTP failures ---------------------------------------------------------------

IN_FIVE_SECONDS = "<an HTTP date 5 s from now>"  # computed when the test runs


@pytest.mark.parametrize(
    ("knobs", "error", "status", "retry_after"),
    [
        pytest.param({"fail_next": 1, "status": 503, "retry_after": 7}, TransientDeliveryError, 503, 7, id="503"),
        pytest.param({"fail_next": 1, "status": 500}, TransientDeliveryError, 500, None, id="500"),
        pytest.param({"fail_next": 1, "status": 502}, TransientDeliveryError, 502, None, id="502"),
        pytest.param({"fail_next": 1, "status": 504}, TransientDeliveryError, 504, None, id="504"),
        pytest.param({"fail_next": 1, "status": 429, "retry_after": 3}, TransientDeliveryError, 429, 3, id="429"),
        pytest.param(
            {"fail_next": 1, "status": 429, "retry_after": IN_FIVE_SECONDS},
            TransientDeliveryError,
            429,
            pytest.approx(5, abs=2),
            id="429-http-date",
        ),
        pytest.param({"fail_next": 1, "status": 408}, TransientDeliveryError, 408, None, id="408"),
        pytest.param({"outage_seconds": 30, "status": 503}, TransientDeliveryError, 503, None, id="outage"),
        pytest.param({"drop_next": 1}, TransientDeliveryError, None, None, id="dropped-connection"),
        pytest.param({"bad_reply_next": 1}, TransientDeliveryError, 200, None, id="html-gateway-page"),
        pytest.param(
            {"bad_reply_next": 1, "bad_reply_body": '{"status": "ok"}'},
            TransientDeliveryError,
            200,
            None,
            id="json-without-error_code",
        ),
        pytest.param({"fail_next": 1, "status": 403}, PermanentDeliveryError, 403, None, id="403"),
        pytest.param({"fail_next": 1, "status": 400}, PermanentDeliveryError, 400, None, id="400"),
        pytest.param({"fail_next": 1, "status": 404}, PermanentDeliveryError, 404, None, id="404"),
        pytest.param({"fail_next": 1, "status": 413}, PermanentDeliveryError, 413, None, id="413"),
        pytest.param({"fail_next": 1, "status": 302}, PermanentDeliveryError, 302, None, id="redirect"),
        pytest.param({"fail_next": 2, "status": 401}, PermanentDeliveryError, 401, None, id="401-twice"),
        pytest.param({"error_next": 1}, PermanentDeliveryError, 200, None, id="error_code-1"),
    ],
)
async def test_failure_mapping(
    adapter: NationalPortalAdapter,
    mock_portal: MockPortalControl,
    *,
    knobs: dict[str, Any],
    error: type[DeliveryError],
    status: int | None,
    retry_after: Any,
) -> None:
    if knobs.get("retry_after") == IN_FIVE_SECONDS:
        knobs = {
            **knobs,
            "retry_after": format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True),
        }
    await mock_portal.set_faults(**knobs)
    with pytest.raises(DeliveryError) as caught:
        await create_dossier(adapter)
    assert type(caught.value) is error
    assert caught.value.status_code == status
    if isinstance(caught.value, TransientDeliveryError):
        assert caught.value.retry_after == retry_after
        assert "will retry" in caught.value.reason
    assert "national portal" in caught.value.reason
    assert_no_personal_data(caught.value.reason)


async def test_outage_ends_and_delivery_succeeds(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await mock_portal.set_faults(outage_seconds=0.3, status=503)
    for _ in range(2):
        with pytest.raises(TransientDeliveryError):
            await create_dossier(adapter)
    await asyncio.sleep(0.35)
    await create_dossier(adapter)
    assert [c["outcome"] for c in await mock_portal.calls()] == ["http_error", "http_error", "accepted"]


async def test_dropped_connection_is_what_httpx_sees_as_a_protocol_error(mock_portal: MockPortalControl) -> None:
    """The mock really drops the connection; a plain httpx client sees a transport error."""
    token = await mock_portal.token()
    await mock_portal.set_faults(drop_next=1)
    async with httpx.AsyncClient(base_url=mock_portal.base_url) as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await http.post("/dvcqg/TraCuuHoSo", json={"MaHoSo": CODE}, headers={"Authorization": f"Bearer {token}"})
    assert (await mock_portal.calls())[-1]["outcome"] == "dropped"


async def test_dropped_connection_reason(adapter: NationalPortalAdapter, mock_portal: MockPortalControl) -> None:
    await mock_portal.set_faults(drop_next=1)
    with pytest.raises(TransientDeliveryError, match="dropped") as caught:
        await create_dossier(adapter)
    assert CODE in caught.value.reason
    assert not caught.value.unsent
    await create_dossier(adapter)  # the next call goes through on a new connection


async def test_slow_portal_times_out_as_transient(make_adapter: AdapterFactory, mock_portal: MockPortalControl) -> None:
    adapter = await make_adapter(timeout_seconds=0.2)
    await adapter.check()  # the token endpoint is not slowed down
    await mock_portal.set_faults(latency_ms=600)
    with pytest.raises(TransientDeliveryError, match=r"did not answer .* within 0\.2 s") as caught:
        await create_dossier(adapter)
    assert CODE in caught.value.reason
    assert not caught.value.unsent  # the portal may have taken it


async def test_busy_connection_pool_is_transient(make_adapter: AdapterFactory, mock_portal: MockPortalControl) -> None:
    adapter = await make_adapter(timeout_seconds=0.25, max_connections=1)
    await adapter.check()
    await mock_portal.set_faults(latency_ms=600)
    results = await asyncio.gather(
        create_dossier(adapter, CODE),
        create_dossier(adapter, "H15.50.05.13-261008-0976"),
        return_exceptions=True,
    )
    assert all(isinstance(r, TransientDeliveryError) for r in results), results
    assert any("No free connection" in r.reason for r in results if isinstance(r, TransientDeliveryError))
    assert all(r.unsent == ("No free connection" in r.reason) for r in results if isinstance(r, TransientDeliveryError))


async def test_unreachable_portal_is_transient() -> None:
    adapter = create_adapter(
        "national-portal",
        {
            "base_url": f"http://127.0.0.1:{free_port()}",
            "client_id": "a",
            "client_secret": "b",
            "timeout_seconds": 1,
        },
    )
    try:
        with pytest.raises(TransientDeliveryError, match="Could not connect"):
            await adapter.check()
        with pytest.raises(TransientDeliveryError, match="Could not connect") as caught:
            await create_dossier(adapter)
        assert caught.value.unsent
    finally:
        await adapter.aclose()


# --- tokens ------------------------------------------------------------------------------------


async def test_hanging_token_endpoint_fails_every_waiting_call_at_once() -> None:
    """A gateway that accepts connections but never answers: one shared token fetch, one timeout."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = create_adapter(
        "national-portal",
        {"base_url": f"http://127.0.0.1:{port}", "client_id": "a", "client_secret": "b", "timeout_seconds": 0.3},
    )
    try:
        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(
            *(create_dossier(adapter, f"H15.50.05.13-261008-{n:04d}") for n in range(1, 11)), return_exceptions=True
        )
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        await adapter.aclose()
        server.close()
    assert all(isinstance(r, TransientDeliveryError) for r in results), results
    assert all("access token" in r.reason for r in results if isinstance(r, TransientDeliveryError))
    assert elapsed < 1.5  # not 10 fetches one after another (3 s)


async def test_expired_token_is_refreshed_once_and_the_call_retried(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await create_dossier(adapter)
    await mock_portal.set_faults(expire_tokens=True)
    await adapter.deliver(upserted(dossier_payload(status=2)), KNOWN)

    calls = await mock_portal.calls()
    assert [(c["status"], c["outcome"]) for c in calls] == [
        (200, "accepted"),
        (401, "http_error"),
        (200, "accepted"),
    ]
    assert (await mock_portal.stats())["tokens_issued"] == 2


async def test_concurrent_401s_share_one_refresh(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    codes = [f"H15.50.05.13-261008-{n:04d}" for n in range(1, 6)]
    for code in codes:
        await create_dossier(adapter, code)
    await mock_portal.set_faults(expire_tokens=True)
    await asyncio.gather(*(adapter.deliver(upserted(dossier_payload(code, status=2)), KNOWN) for code in codes))
    assert (await mock_portal.stats())["tokens_issued"] == 2


async def test_token_is_reused_until_it_expires(make_adapter: AdapterFactory, mock_portal: MockPortalControl) -> None:
    adapter = await make_adapter()
    for n in range(1, 4):
        await create_dossier(adapter, f"H15.50.05.13-261008-{n:04d}")
    assert (await mock_portal.stats())["tokens_issued"] == 1


async def test_short_lived_token_is_renewed_before_use(
    make_adapter: AdapterFactory, mock_portal: MockPortalControl
) -> None:
    await mock_portal.set_faults(token_ttl_seconds=1)
    adapter = await make_adapter()
    await create_dossier(adapter, "H15.50.05.13-261008-0001")
    await asyncio.sleep(1.0)
    await create_dossier(adapter, "H15.50.05.13-261008-0002")
    stats = await mock_portal.stats()
    assert stats["tokens_issued"] == 2
    assert stats["calls_by_outcome"] == {"accepted": 2}  # no 401 on the way


async def test_401_after_a_fresh_token_is_permanent(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    await mock_portal.set_faults(fail_next=2, status=401)
    with pytest.raises(PermanentDeliveryError, match=r"(?i)check the client id/secret in settings, then replay"):
        await create_dossier(adapter)
    assert len(await mock_portal.calls()) == 2  # the call and its single retry
    assert (await mock_portal.stats())["tokens_issued"] == 2


async def test_wrong_credentials_are_permanent(make_adapter: AdapterFactory, mock_portal: MockPortalControl) -> None:
    await mock_portal.set_faults(required_client_id="lgsp-hub", required_client_secret="the-right-one")
    adapter = await make_adapter(client_secret="a-wrong-one")
    for attempt in (adapter.check(), create_dossier(adapter)):
        with pytest.raises(PermanentDeliveryError, match="client id/secret") as caught:
            await attempt
        assert caught.value.status_code == 401
        assert "a-wrong-one" not in caught.value.reason
    assert await mock_portal.calls() == []


# --- every exception httpx can raise is translated ---------------------------------------------


def _all_subclasses(cls: type[Exception]) -> list[type[Exception]]:
    found: list[type[Exception]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


EXPECTED_PERMANENT = {httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.TooManyRedirects}
#: No connection was made, so the request never left the hub: the portal cannot have it.
NEVER_SENT = {httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout}


@pytest.mark.parametrize("exc_type", [*_all_subclasses(httpx.RequestError), OSError], ids=lambda t: t.__name__)
def test_every_transport_exception_is_translated(exc_type: type[Exception]) -> None:
    exc = exc_type("boom")
    error = transport_failure(exc, action=f"DongBoHoSoMC for dossier {CODE}", url="http://portal", timeout=10)
    expected = PermanentDeliveryError if exc_type in EXPECTED_PERMANENT else TransientDeliveryError
    assert type(error) is expected
    assert exc_type.__name__ in error.reason
    if isinstance(error, TransientDeliveryError):  # anything else may have reached the portal: in doubt
        assert error.unsent is (exc_type in NEVER_SENT)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 10, 21, 7, 28, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"base_url": "portal.example.vn", "client_id": "a", "client_secret": "b"},
        {"base_url": "https://portal.example.vn"},
        {"base_url": "https://portal.example.vn", "client_id": "a", "client_secret": ""},
        {
            "base_url": "https://portal.example.vn",
            "client_id": "a",
            "client_secret": "b",
            "timeout_seconds": 0,
        },
        {
            "base_url": "https://portal.example.vn",
            "client_id": "a",
            "client_secret": "b",
            "max_connections": "x",
        },
    ],
)
def test_bad_settings_are_configuration_errors(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="national-portal"):
        create_adapter("national-portal", config)
