"""Translation of HTTP transport failures and error statuses into the hub's error hierarchy.

Shared by the payment platform, VNPost and one-stop adapters (the national portal adapter has its
own, older table). Every sentence names the system, what the hub was doing and what happens next:

=====================================  ==========================================================
connect error, timeout, dropped        transient (retried)
connection, proxy failure
HTTP 429, 5xx, 408                     transient; ``Retry-After`` honoured
HTTP 401, 403                          permanent: the credentials in settings are wrong
other HTTP 4xx, redirects              permanent
bad URL, request that cannot be built  permanent
=====================================  ==========================================================
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from hub.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

__all__ = ["body_snippet", "http_status_failure", "parse_retry_after", "redact_error", "transport_failure"]

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"(?<!\d)\+?\d{9,12}(?!\d)")
_EMAIL = re.compile(r"[^@\s'\"<>()]+@[^@\s'\"<>()]+\.[A-Za-z]{2,}")
_SNIPPET = 200


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def body_snippet(text: str) -> str:
    """A short one-line excerpt of a reply body, tags removed, phone/ID numbers and e-mails masked."""
    text = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    text = _EMAIL.sub("***", _DIGITS.sub("***", text))
    if len(text) > _SNIPPET:
        text = text[: _SNIPPET - 1] + "…"
    return text or "(empty body)"


def transport_failure(exc: Exception, *, system: str, action: str, url: str, timeout: float) -> DeliveryError:
    """Translate an httpx (or socket) exception raised while doing ``action`` against ``url``."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.PoolTimeout):
        return TransientDeliveryError(
            f"No free connection to {system} for {action} within {timeout:g} s ({kind}): every connection was "
            "busy with slow calls. The hub will retry; if it keeps happening, check how fast it answers.",
            unsent=True,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return TransientDeliveryError(
            f"Could not connect to {system} at {url} within {timeout:g} s for {action} ({kind}). The hub will "
            "retry; if it keeps happening, check the network route to it.",
            unsent=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return TransientDeliveryError(
            f"{system} did not answer {action} within {timeout:g} s ({kind}). The hub will retry; if it keeps "
            "happening, check the system's status or raise timeout_seconds for this target."
        )
    if isinstance(exc, httpx.ConnectError):
        return TransientDeliveryError(
            f"Could not connect to {system} at {url} for {action} ({kind}). The hub will retry; check that it "
            "is up and reachable from the hub if it keeps happening.",
            unsent=True,
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return PermanentDeliveryError(
            f"The address {url} of {system} is not a valid http:// or https:// URL ({kind}). Fix base_url for "
            "this target in the route file or its environment variable."
        )
    if isinstance(exc, httpx.LocalProtocolError):
        return PermanentDeliveryError(
            f"The hub could not build a valid HTTP request to {system} for {action} ({kind}: {exc}). Check that "
            "the credentials for this target are plain ASCII."
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return PermanentDeliveryError(f"{system} redirected {action} too many times; check base_url for this target.")
    # RemoteProtocolError, ReadError, WriteError, ProxyError, DecodingError, OSError ...
    return TransientDeliveryError(f"The connection to {system} failed during {action} ({kind}). The hub will retry.")


def http_status_failure(response: httpx.Response, *, system: str, action: str) -> DeliveryError:
    """Translate a non-2xx HTTP answer."""
    status = response.status_code
    snippet = body_snippet(response.text)
    if status in (401, 403):
        return PermanentDeliveryError(
            f"{system} refused {action} with HTTP {status} ({snippet}): the hub's credentials for it are wrong "
            "or lack a permission. Fix them in settings, then replay.",
            status_code=status,
        )
    if status in {408, 429} or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        wait = f" after {retry_after:g} s as it asked" if retry_after is not None else ""
        return TransientDeliveryError(
            f"{system} answered {action} with HTTP {status} ({snippet}). The hub will retry{wait}.",
            status_code=status,
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        return PermanentDeliveryError(
            f"{system} redirected {action} to {response.headers.get('location', '(nowhere)')} (HTTP {status}); "
            "check base_url for this target.",
            status_code=status,
        )
    return PermanentDeliveryError(
        f"{system} refused {action} with HTTP {status} ({snippet}). Fix the request, then replay.", status_code=status
    )


def redact_error(error: DeliveryError, personal: Iterable[str]) -> DeliveryError:
    """``error`` with known personal values (names, phones, addresses a system echoed back) masked."""
    reason = error.reason
    for value in sorted({v for v in personal if v and len(v) >= 3}, key=len, reverse=True):
        reason = reason.replace(value, "***")
    if reason == error.reason:
        return error
    redacted = copy.copy(error)
    redacted.reason = reason
    redacted.args = (reason,)
    return redacted
