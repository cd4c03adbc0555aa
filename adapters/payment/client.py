"""HTTP client of the payment platform: signed INIT, QUERY, GET_BILL and REFUND messages.

Every message is POSTed as JSON to one endpoint (``api_path``); the answer's ``MaXacThuc`` is
checked before anything in it is believed. Failures leave as :class:`~hub.plugin.DeliveryError`:

=======================================  =============================================================
transport failure, HTTP 5xx/429          transient (see :mod:`hub.http_errors`, through hub.plugin)
HTTP 401/403, other 4xx                  permanent
answer not JSON / not the platform's     transient (a gateway error page, most likely)
answer with a wrong MaXacThuc            unusable reply (permanent; a request-reply caller gets 502)
MaLoi "99" (the platform failed)         transient
MaLoi "97" (our MaXacThuc refused)       permanent: the partner secret in settings is wrong
MaLoi "96", "98", any other              permanent: the request is wrong
=======================================  =============================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel, ValidationError

from adapters.payment.signing import sign_message, verify_message
from adapters.payment.wire import (
    PROTOCOL_VERSION,
    BillReply,
    InitReply,
    PaymentResult,
    PlatformReply,
    RefundReply,
    platform_time,
)
from hub.plugin import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnusableReplyError,
    body_snippet,
    http_status_failure,
    transport_failure,
)

__all__ = ["PaymentPlatformClient", "reply_failure"]

log = structlog.get_logger(__name__)

SYSTEM = "the payment platform"
_ReplyT = TypeVar("_ReplyT", bound=BaseModel)


def reply_failure(reply: PlatformReply, *, action: str) -> DeliveryError:
    """Translate an answer whose MaLoi is not "00"."""
    said = (reply.MoTaLoi or "no description").strip()
    if reply.MaLoi == "99":
        return TransientDeliveryError(
            f"{SYSTEM} could not do {action} right now (MaLoi 99: {said}). The hub will retry.", status_code=200
        )
    if reply.MaLoi == "97":
        return PermanentDeliveryError(
            f"{SYSTEM} refused the signature (MaXacThuc) of {action} (MaLoi 97: {said}): the partner secret or "
            "MaDoiTac in the hub's settings is not the one the platform issued. Fix them, then send it again.",
            status_code=200,
        )
    return PermanentDeliveryError(
        f"{SYSTEM} refused {action} (MaLoi {reply.MaLoi}: {said}). Fix the request, then send it again.",
        status_code=200,
    )


class PaymentPlatformClient:
    """Sends signed messages to one partner account (MaDoiTac) of a payment platform."""

    def __init__(
        self,
        *,
        base_url: str,
        partner_code: str,
        secret: str,
        api_path: str = "/api/thanh-toan",
        timeout_seconds: float = 10.0,
        max_connections: int = 20,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}{api_path}"
        self.partner_code = partner_code
        self._secret = secret
        self.timeout_seconds = timeout_seconds
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=max_connections),
            headers={"Accept": "application/json", "User-Agent": "lgsp-hub payment adapter"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ signatures

    def verify(self, kind: str, message: Mapping[str, Any]) -> bool:
        """Whether ``message`` carries this partner's valid MaXacThuc for ``kind`` (constant time)."""
        return verify_message(kind, message, self._secret)

    def signed(self, kind: str, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` with its MaXacThuc (used by tests and the mock to build valid messages)."""
        return {**message, "MaXacThuc": sign_message(kind, message, self._secret)}

    # ------------------------------------------------------------------ messages

    async def init(
        self, *, reference: str, amount: int, currency: str, description: str, return_url: str | None
    ) -> InitReply:
        """INIT: create a payment; the answer carries UrlThanhToan (the payment page)."""
        message: dict[str, Any] = {
            "LoaiBanTin": "INIT",
            "PhienBan": PROTOCOL_VERSION,
            "MaDoiTac": self.partner_code,
            "MaThamChieu": reference,
            "SoTien": amount,
            "MaTienTe": currency,
            "ThongTinGiaoDich": description,
            "ThoiGianGD": platform_time(),
        }
        if return_url:
            message["UrlTraVe"] = return_url
        action = f"INIT of payment {reference}"
        reply = await self._exchange("INIT", message, InitReply, action=action)
        if not reply.ok:
            raise reply_failure(reply, action=action)
        self._check_signature("INIT_REPLY", reply, action)
        if not reply.UrlThanhToan or not reply.UrlThanhToan.startswith(("https://", "http://")):
            raise UnusableReplyError(f"{SYSTEM} accepted {action} but sent no usable UrlThanhToan.")
        return reply

    async def query(self, reference: str) -> PaymentResult:
        """QUERY: the payment's result as the platform knows it (signature checked; any MaLoi)."""
        message = {
            "LoaiBanTin": "QUERY",
            "PhienBan": PROTOCOL_VERSION,
            "MaDoiTac": self.partner_code,
            "MaThamChieu": reference,
            "ThoiGianGD": platform_time(),
        }
        action = f"QUERY of payment {reference}"
        raw = await self._post("QUERY", message, action=action)
        if isinstance(raw.get("MaLoi"), str) and raw["MaLoi"] in ("96", "97", "98", "99"):
            raise reply_failure(PlatformReply.model_validate(raw), action=action)
        try:
            result = PaymentResult.model_validate(raw)
        except ValidationError as exc:
            raise TransientDeliveryError(
                f"{SYSTEM} answered {action} with something that is not a payment result ({_problems(exc)}). "
                "The hub will ask again."
            ) from None
        if not self.verify("RESULT", raw):
            raise UnusableReplyError(
                f"{SYSTEM}'s answer to {action} has a wrong MaXacThuc, so it was not believed. Check that the "
                "partner secret in settings is the platform's, or whether something between the hub and the "
                "platform alters answers."
            )
        return result

    async def get_bill(self, reference: str, transaction_id: str) -> BillReply:
        """GET_BILL: the receipt of a paid payment."""
        message = {
            "LoaiBanTin": "GET_BILL",
            "PhienBan": PROTOCOL_VERSION,
            "MaDoiTac": self.partner_code,
            "MaThamChieu": reference,
            "MaGiaoDich": transaction_id,
            "ThoiGianGD": platform_time(),
        }
        action = f"GET_BILL of payment {reference}"
        reply = await self._exchange("GET_BILL", message, BillReply, action=action)
        if not reply.ok:
            raise reply_failure(reply, action=action)
        self._check_signature("GET_BILL_REPLY", reply, action)
        if not reply.SoBienLai:
            raise TransientDeliveryError(f"{SYSTEM} has no receipt number yet for {action}; the hub will ask again.")
        return reply

    async def refund(
        self, *, reference: str, transaction_id: str, refund_reference: str, amount: int, currency: str, reason: str
    ) -> RefundReply:
        """REFUND: give back ``amount`` of a paid payment (idempotent per MaHoanTien)."""
        message = {
            "LoaiBanTin": "REFUND",
            "PhienBan": PROTOCOL_VERSION,
            "MaDoiTac": self.partner_code,
            "MaThamChieu": reference,
            "MaGiaoDich": transaction_id,
            "MaHoanTien": refund_reference,
            "SoTien": amount,
            "MaTienTe": currency,
            "LyDo": reason,
            "ThoiGianGD": platform_time(),
        }
        action = f"REFUND {refund_reference} of payment {reference}"
        reply = await self._exchange("REFUND", message, RefundReply, action=action)
        if not reply.ok:
            raise reply_failure(reply, action=action)
        self._check_signature("REFUND_REPLY", reply, action)
        return reply

    # ------------------------------------------------------------------ plumbing

    def _check_signature(self, kind: str, reply: BaseModel, action: str) -> None:
        if not self.verify(kind, reply.model_dump()):
            raise UnusableReplyError(
                f"{SYSTEM}'s answer to {action} has a wrong MaXacThuc, so it was not believed. Check that the "
                "partner secret in settings is the platform's."
            )

    async def _exchange(self, kind: str, message: dict[str, Any], model: type[_ReplyT], *, action: str) -> _ReplyT:
        raw = await self._post(kind, message, action=action)
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise TransientDeliveryError(
                f"{SYSTEM} answered {action} with JSON that is not its answer ({_problems(exc)}). The hub will retry."
            ) from None

    async def _post(self, kind: str, message: dict[str, Any], *, action: str) -> dict[str, Any]:
        body = {**message, "MaXacThuc": sign_message(kind, message, self._secret)}
        try:
            content = json.dumps(body, ensure_ascii=False).encode("utf-8")
            response = await self._http.post(
                self.url, content=content, headers={"Content-Type": "application/json; charset=utf-8"}
            )
        except (httpx.HTTPError, OSError) as exc:
            raise transport_failure(
                exc, system=SYSTEM, action=action, url=self.url, timeout=self.timeout_seconds
            ) from exc
        if not 200 <= response.status_code < 300:
            raise http_status_failure(response, system=SYSTEM, action=action)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TransientDeliveryError(
                f"{SYSTEM} answered {action} with HTTP {response.status_code} but not a JSON object "
                f"({body_snippet(response.text)}); probably a gateway error page. The hub will retry.",
                status_code=response.status_code,
            )
        log.info("payment_platform.exchanged", kind=kind, ma_loi=data.get("MaLoi"))
        return data


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)
    )
