"""HTTP client of VNPost: getToken (cached, refreshed once on 401), postOrder, cancelOrder, getOrderTracking.

Failures leave as :class:`~hub.plugin.DeliveryError`:

======================================  =============================================================
transport failure, HTTP 5xx/429         transient (see :mod:`hub.http_errors`, through hub.plugin)
HTTP 401 after a fresh token            permanent: the username/password in settings are wrong
Status "500"                            transient: VNPost's system failed
Status "106" at getToken                permanent: wrong username or password
Status "102", "104", "105", other       permanent, with VNPost's message
answer that is not VNPost's JSON        transient (a gateway error page, most likely)
======================================  =============================================================
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from adapters.vnpost.wire import (
    STATUS_BAD_CREDENTIALS,
    STATUS_MEANINGS,
    STATUS_SYSTEM_ERROR,
    TOKEN_HEADER,
    TokenData,
    VNPostReply,
)
from hub.plugin import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    body_snippet,
    http_status_failure,
    transport_failure,
)

__all__ = ["VNPostClient", "status_failure"]

log = structlog.get_logger(__name__)

SYSTEM = "VNPost"
TOKEN_MARGIN_SECONDS = 30.0


def status_failure(reply: VNPostReply, *, action: str) -> DeliveryError:
    """Translate an answer whose Status is neither "100" nor "101"."""
    said = body_snippet(reply.Message or STATUS_MEANINGS.get(reply.Status, "no message"))
    if reply.Status == STATUS_SYSTEM_ERROR or reply.Status.startswith("5"):
        return TransientDeliveryError(f"{SYSTEM} failed {action} (Status {reply.Status}: {said}). The hub will retry.")
    if reply.Status == STATUS_BAD_CREDENTIALS:
        return PermanentDeliveryError(
            f"{SYSTEM} refused the hub's username or password (Status {reply.Status}: {said}). Fix them in the "
            "settings of the VNPost target."
        )
    return PermanentDeliveryError(f"{SYSTEM} refused {action} (Status {reply.Status}: {said}).")


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float

    def fresh(self) -> bool:
        return time.monotonic() < self.refresh_at


class VNPostClient:
    """Calls VNPost's services with a cached access token; raises only DeliveryErrors."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        customer_code: str,
        timeout_seconds: float = 10.0,
        api_prefix: str = "/serviceApi/v1",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.prefix = f"{self.base_url}{api_prefix}"
        self.username = username
        self._password = password
        self.customer_code = customer_code
        self.timeout_seconds = timeout_seconds
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            headers={"Accept": "application/json", "User-Agent": "lgsp-hub vnpost adapter"},
            follow_redirects=False,
        )
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self.tokens_fetched = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, service: str, body: dict[str, Any], *, action: str) -> VNPostReply:
        """POST ``body`` to ``service`` with the token; refresh it once on HTTP 401."""
        token = await self._current_token()
        response = await self._post(service, body, token, action)
        if response.status_code == 401:
            log.info("vnpost.token_rejected", service=service)
            token = await self._refresh_after(token)
            response = await self._post(service, body, token, action)
        if not 200 <= response.status_code < 300:
            raise http_status_failure(response, system=SYSTEM, action=action)
        return self._reply(response, action)

    async def fetch_token(self) -> str:
        async with self._token_lock:
            return await self._fetch_token()

    async def _current_token(self) -> str:
        token = self._token
        if token is not None and token.fresh():
            return token.value
        async with self._token_lock:
            token = self._token
            if token is not None and token.fresh():
                return token.value
            return await self._fetch_token()

    async def _refresh_after(self, rejected: str) -> str:
        async with self._token_lock:
            token = self._token
            if token is not None and token.value != rejected and token.fresh():
                return token.value  # another call already refreshed it
            return await self._fetch_token()

    async def _fetch_token(self) -> str:
        self._token = None
        action = "getToken"
        url = f"{self.prefix}/getToken"
        try:
            response = await self._http.post(url, json={"Username": self.username, "Password": self._password})
        except (httpx.HTTPError, OSError) as exc:
            raise transport_failure(exc, system=SYSTEM, action=action, url=url, timeout=self.timeout_seconds) from exc
        if response.status_code in (401, 403):
            raise PermanentDeliveryError(
                f"{SYSTEM} refused the hub's username or password at getToken (HTTP {response.status_code}). "
                "Fix them in the settings of the VNPost target.",
                status_code=response.status_code,
            )
        if not 200 <= response.status_code < 300:
            raise http_status_failure(response, system=SYSTEM, action=action)
        reply = self._reply(response, action)
        if not reply.ok:
            raise status_failure(reply, action=action)
        try:
            data = TokenData.model_validate(reply.Data)
        except ValidationError:
            raise TransientDeliveryError(f"{SYSTEM} answered getToken without a token; the hub will retry.") from None
        margin = min(TOKEN_MARGIN_SECONDS, data.ExpiresIn * 0.1)
        self._token = _Token(data.Token, time.monotonic() + data.ExpiresIn - margin)
        self.tokens_fetched += 1
        log.info("vnpost.token_fetched", expires_in=data.ExpiresIn)
        return data.Token

    async def _post(self, service: str, body: dict[str, Any], token: str, action: str) -> httpx.Response:
        url = f"{self.prefix}/{service}"
        try:
            return await self._http.post(
                url,
                content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                headers={TOKEN_HEADER: token, "Content-Type": "application/json; charset=utf-8"},
            )
        except (httpx.HTTPError, OSError) as exc:
            raise transport_failure(exc, system=SYSTEM, action=action, url=url, timeout=self.timeout_seconds) from exc

    @staticmethod
    def _reply(response: httpx.Response, action: str) -> VNPostReply:
        try:
            return VNPostReply.model_validate_json(response.content)
        except ValidationError:
            raise TransientDeliveryError(
                f"{SYSTEM} answered {action} with HTTP {response.status_code} but not its JSON reply "
                f"({body_snippet(response.text)}); probably a gateway error page. The hub will retry.",
                status_code=response.status_code,
            ) from None
