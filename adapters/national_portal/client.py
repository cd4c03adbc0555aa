"""HTTP client of the national portal, behind the NGSP/LGSP WSO2 gateway.

OAuth2 client credentials: the token is cached until shortly before it expires, and
refreshed once when a call answers 401 (then the call is retried once). Every transport or
HTTP failure leaves this module as :class:`~hub.errors.TransientDeliveryError` or
:class:`~hub.errors.PermanentDeliveryError`, through the hub's one translation
(:func:`hub.plugin.transport_failure`, :func:`hub.plugin.http_status_failure`) with the portal's own advice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from adapters.national_portal.wire import PortalReply, TokenReply
from hub.plugin import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    body_snippet,
    http_status_failure,
)
from hub.plugin import transport_failure as plugin_transport_failure

__all__ = [
    "NationalPortalClient",
    "http_failure",
    "transport_failure",
]

log = structlog.get_logger(__name__)

SERVICE_PATH = "/dvcqg"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
#: Refresh a token this long before the portal says it expires (at most 10 % of its lifetime).
TOKEN_EXPIRY_MARGIN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # time.monotonic()

    def fresh(self) -> bool:
        return time.monotonic() < self.refresh_at


SYSTEM = "the national portal"
#: What the portal's refusals ask of the province (the rest of each sentence is hub.plugin's).
_ADVICE = {
    401: "The hub's access token was refused even after a new one was fetched: check the client id/secret in "
    "settings, then replay.",
    403: "The hub's client is not allowed to call this service: ask the NGSP/portal operators to subscribe it, "
    "then replay.",
    400: "Fix the dossier.",
}


def transport_failure(exc: Exception, *, action: str, url: str, timeout: float) -> DeliveryError:
    """An httpx (or socket) failure while doing ``action`` against the portal (:func:`hub.plugin.transport_failure`)."""
    return plugin_transport_failure(exc, system=SYSTEM, action=action, url=url, timeout=timeout)


def http_failure(response: httpx.Response, *, action: str, personal: Iterable[str] = ()) -> DeliveryError:
    """A non-2xx answer other than the 401 the token refresh handles (:func:`hub.plugin.http_status_failure`)."""
    return http_status_failure(response, system=SYSTEM, action=action, personal=personal, advice=_ADVICE)


class NationalPortalClient:
    """Calls the portal's services with a cached bearer token; raises only DeliveryErrors."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout_seconds: float = 10.0,
        max_connections: int = 50,
        token_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url or f"{self.base_url}{TOKEN_PATH}"
        self.client_id = client_id
        self._client_secret = client_secret
        self.timeout_seconds = timeout_seconds
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"Accept": "application/json", "User-Agent": "lgsp-hub national_portal adapter"},
            follow_redirects=False,
        )
        self._token: _Token | None = None
        self._token_fetch: asyncio.Task[str] | None = None

    async def aclose(self) -> None:
        if self._token_fetch is not None:
            self._token_fetch.cancel()
        await self._http.aclose()

    async def call(
        self, service: str, body: Mapping[str, Any], *, subject: str, personal: Iterable[str] = ()
    ) -> PortalReply:
        """POST ``body`` to ``service``; return the portal's reply (``error_code`` 0 or not).

        ``subject`` ("dossier H15…-0975") names what the call is about in error reasons;
        ``personal`` lists values to mask if the portal echoes them back.
        """
        action = f"{service} for {subject}"
        url = f"{self.base_url}{SERVICE_PATH}/{service}"
        personal = list(personal)
        try:
            content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise PermanentDeliveryError(
                f"The request {action} cannot be written as JSON ({exc}). Report this to the hub maintainers."
            ) from None
        token = await self._current_token()
        response = await self._post_json(url, content, token, action)
        if response.status_code == 401:
            log.info("national_portal.token_rejected", service=service, token_url=self.token_url)
            token = await self._token_after_rejection(token)
            response = await self._post_json(url, content, token, action)
        if not 200 <= response.status_code < 300:
            raise http_failure(response, action=action, personal=personal)
        return self._parse_reply(response, action=action, personal=personal)

    async def fetch_token(self) -> None:
        """Fetch a new token now (readiness check); raises a DeliveryError when that fails."""
        await self._shared_token_fetch()

    async def _post_json(self, url: str, content: bytes, token: str, action: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
        try:
            return await self._http.post(url, content=content, headers=headers)
        except (httpx.HTTPError, OSError) as exc:
            raise transport_failure(exc, action=action, url=url, timeout=self.timeout_seconds) from exc

    @staticmethod
    def _parse_reply(response: httpx.Response, *, action: str, personal: list[str]) -> PortalReply:
        try:
            return PortalReply.model_validate_json(response.content)
        except ValidationError:
            raise TransientDeliveryError(
                f"The national portal answered {action} with HTTP {response.status_code} but not its JSON "
                f"reply with an error_code ({body_snippet(response.text, personal)}); probably a gateway error "
                "page. The hub will retry.",
                status_code=response.status_code,
            ) from None

    async def _current_token(self) -> str:
        token = self._token
        if token is not None and token.fresh():
            return token.value
        return await self._shared_token_fetch()

    async def _token_after_rejection(self, rejected: str) -> str:
        """A new token after ``rejected`` got a 401; concurrent calls that race here share one fetch."""
        token = self._token
        if token is not None and token.value != rejected and token.fresh():
            return token.value
        return await self._shared_token_fetch()

    async def _shared_token_fetch(self) -> str:
        """Join the token request in flight, or start one: callers never queue one after another.

        When the token endpoint hangs or fails, every waiting call gets the same error at once
        instead of each trying again for another ``timeout_seconds``.
        """
        task = self._token_fetch
        if task is None:
            task = asyncio.create_task(self._fetch_token())
            self._token_fetch = task
            task.add_done_callback(self._token_fetch_done)
        # shield: a cancelled caller must not cancel the fetch other callers wait for.
        return await asyncio.shield(task)

    def _token_fetch_done(self, task: asyncio.Task[str]) -> None:
        if self._token_fetch is task:
            self._token_fetch = None
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not logged as lost

    async def _fetch_token(self) -> str:
        self._token = None
        action = "fetching an access token"
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        try:
            response = await self._http.post(self.token_url, data=form)
        except (httpx.HTTPError, OSError) as exc:
            raise transport_failure(exc, action=action, url=self.token_url, timeout=self.timeout_seconds) from exc
        status = response.status_code
        if status in (400, 401, 403):
            raise PermanentDeliveryError(
                f"The national portal's token endpoint {self.token_url} refused the client credentials "
                f"(HTTP {status}: {body_snippet(response.text)}). Check the client id/secret in settings, "
                "then replay.",
                status_code=status,
            )
        if not 200 <= status < 300:
            raise http_failure(response, action=f"{action} from {self.token_url}")
        try:
            reply = TokenReply.model_validate_json(response.content)
        except ValidationError:
            raise TransientDeliveryError(
                f"The national portal's token endpoint {self.token_url} answered HTTP {status} without an "
                f"access token ({body_snippet(response.text)}); probably a gateway error page. "
                "The hub will retry.",
                status_code=status,
            ) from None
        margin = min(TOKEN_EXPIRY_MARGIN_SECONDS, reply.expires_in * 0.1)
        self._token = _Token(reply.access_token, time.monotonic() + reply.expires_in - margin)
        log.info("national_portal.token_fetched", token_url=self.token_url, expires_in=reply.expires_in)
        return reply.access_token
