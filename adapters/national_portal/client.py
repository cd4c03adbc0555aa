"""HTTP client of the national portal, behind the NGSP/LGSP WSO2 gateway.

OAuth2 client credentials: the token is cached until shortly before it expires, and
refreshed once when a call answers 401 (then the call is retried once). Every transport or
HTTP failure leaves this module as :class:`~hub.errors.TransientDeliveryError` or
:class:`~hub.errors.PermanentDeliveryError`; see :func:`transport_failure` and
:func:`http_failure` for the table.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from adapters.national_portal.mapping import redact
from adapters.national_portal.wire import PortalReply, TokenReply
from hub.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

__all__ = [
    "NationalPortalClient",
    "http_failure",
    "parse_retry_after",
    "transport_failure",
]

log = structlog.get_logger(__name__)

SERVICE_PATH = "/dvcqg"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
#: Refresh a token this long before the portal says it expires (at most 10 % of its lifetime).
TOKEN_EXPIRY_MARGIN_SECONDS = 30.0
_SNIPPET_LENGTH = 200
_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # time.monotonic()

    def fresh(self) -> bool:
        return time.monotonic() < self.refresh_at


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _snippet(text: str, personal: Iterable[str] = ()) -> str:
    """A short, single-line, redacted excerpt of a reply body (HTML tags removed)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("fault"), dict):  # WSO2 gateway fault
        message, description = (str(data["fault"].get(key) or "").strip() for key in ("message", "description"))
        text = description if message in description else f"{message}: {description}".strip(": ")
    elif isinstance(data, dict) and "error" in data:  # OAuth2 error
        text = str(data["error"])
    else:
        title = _TITLE.search(text)
        text = html.unescape(_TAG.sub(" ", title.group(1) if title else text))
    text = _SPACE.sub(" ", text).strip()
    if len(text) > _SNIPPET_LENGTH:
        text = text[: _SNIPPET_LENGTH - 1] + "…"
    return redact(text, personal) or "(empty body)"


def transport_failure(exc: Exception, *, action: str, url: str, timeout: float) -> DeliveryError:
    """Translate an httpx (or socket) exception raised while doing ``action`` against ``url``."""
    kind = type(exc).__name__
    detail = f" ({kind}: {exc})" if str(exc) else f" ({kind})"
    if isinstance(exc, httpx.PoolTimeout):
        return TransientDeliveryError(
            f"No free connection to the national portal for {action} within {timeout:g}s{detail}: every "
            "connection was busy with slow calls. The hub will retry; if it keeps happening, raise "
            "max_connections or check how fast the portal answers.",
            unsent=True,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return TransientDeliveryError(
            f"Could not connect to the national portal at {url} within {timeout:g}s for {action}{detail}. "
            "The hub will retry; if it keeps happening, check the network route to the NGSP/LGSP gateway.",
            unsent=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return TransientDeliveryError(
            f"The national portal did not answer {action} within {timeout:g}s{detail}. The hub will retry; "
            "if it keeps happening, check the portal's status or raise timeout_seconds for this target."
        )
    if isinstance(exc, httpx.ConnectError):
        return TransientDeliveryError(
            f"Could not connect to the national portal at {url} for {action}{detail}. The hub will retry; "
            "if it keeps happening, check that the gateway is up and reachable from the hub.",
            unsent=True,
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return PermanentDeliveryError(
            f"The national portal URL {url} is not an http:// or https:// address{detail}. "
            "Fix base_url (or token_url) for this target in settings, then replay."
        )
    if isinstance(exc, httpx.LocalProtocolError):
        return PermanentDeliveryError(
            f"The hub could not build a valid HTTP request for {action}{detail}. Check that client_id and "
            "client_secret for this target are plain ASCII; if they are, report this to the hub maintainers."
        )
    if isinstance(exc, httpx.ProxyError):
        return TransientDeliveryError(
            f"The HTTP proxy between the hub and the national portal failed during {action}{detail}. "
            "The hub will retry; check the proxy if it keeps happening."
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return PermanentDeliveryError(
            f"The national portal redirected {action} too many times{detail}. Check base_url for this "
            "target in settings, then replay."
        )
    if isinstance(exc, httpx.DecodingError):
        return TransientDeliveryError(
            f"The national portal's answer to {action} could not be decoded{detail}. The hub will retry."
        )
    # RemoteProtocolError, ReadError, WriteError, CloseError, other network and socket errors.
    return TransientDeliveryError(
        f"The connection to the national portal dropped during {action}{detail}. The hub will retry."
    )


def http_failure(
    response: httpx.Response,
    *,
    action: str,
    client_id: str,
    personal: Iterable[str] = (),
) -> DeliveryError:
    """Translate a non-2xx answer (other than the 401 handled by the token refresh)."""
    status = response.status_code
    snippet = _snippet(response.text, personal)
    if 300 <= status < 400:
        location = response.headers.get("location", "(no Location header)")
        return PermanentDeliveryError(
            f"The national portal redirected {action} to {location} (HTTP {status}); base_url for this "
            "target is probably wrong (http instead of https, or a missing path). Fix it in settings, "
            "then replay.",
            status_code=status,
        )
    if status == 401:
        return PermanentDeliveryError(
            f"The national portal refused the hub's access token for {action} (HTTP 401) even after fetching "
            f"a new one ({snippet}). Check the client id/secret in settings, then replay.",
            status_code=status,
        )
    if status == 403:
        return PermanentDeliveryError(
            f"The national portal refused {action} (HTTP 403 Forbidden: {snippet}): client {client_id!r} is "
            "not allowed to call this service. Ask the NGSP/portal operators to subscribe the client to it, "
            "then replay.",
            status_code=status,
        )
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    wait = f" after {retry_after:g}s as the portal asked" if retry_after is not None else ""
    if status == 429:
        return TransientDeliveryError(
            f"The national portal is throttling the hub (HTTP 429) and refused {action}. "
            f"The hub will retry{wait}; if it keeps happening, ask for a higher quota.",
            status_code=status,
            retry_after=retry_after,
        )
    if status == 408:
        return TransientDeliveryError(
            f"The national portal timed out reading {action} (HTTP 408). The hub will retry{wait}.",
            status_code=status,
            retry_after=retry_after,
        )
    if 400 <= status < 500:
        return PermanentDeliveryError(
            f"The national portal refused {action} as invalid (HTTP {status}: {snippet}). "
            "Fix the dossier.",
            status_code=status,
        )
    return TransientDeliveryError(
        f"The national portal answered HTTP {status} to {action} ({snippet}). The hub will retry{wait}.",
        status_code=status,
        retry_after=retry_after,
    )


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
            raise http_failure(response, action=action, client_id=self.client_id, personal=personal)
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
                f"reply with an error_code ({_snippet(response.text, personal)}); probably a gateway error "
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
                f"(HTTP {status}: {_snippet(response.text)}). Check the client id/secret in settings, "
                "then replay.",
                status_code=status,
            )
        if not 200 <= status < 300:
            raise http_failure(response, action=f"{action} from {self.token_url}", client_id=self.client_id)
        try:
            reply = TokenReply.model_validate_json(response.content)
        except ValidationError:
            raise TransientDeliveryError(
                f"The national portal's token endpoint {self.token_url} answered HTTP {status} without an "
                f"access token ({_snippet(response.text)}); probably a gateway error page. "
                "The hub will retry.",
                status_code=status,
            ) from None
        margin = min(TOKEN_EXPIRY_MARGIN_SECONDS, reply.expires_in * 0.1)
        self._token = _Token(reply.access_token, time.monotonic() + reply.expires_in - margin)
        log.info("national_portal.token_fetched", token_url=self.token_url, expires_in=reply.expires_in)
        return reply.access_token
