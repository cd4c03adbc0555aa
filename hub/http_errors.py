"""The one translation of outbound HTTP failures into the hub's error hierarchy, for every adapter.

Every sentence names the system, what the hub was doing and what happens next:

=====================================  ==========================================================
connect error, connect timeout, no     transient, and nothing was sent (``unsent``: no doubt)
free connection in the pool
read timeout, dropped connection,      transient; the target may have taken it (in doubt)
proxy failure, undecodable answer
HTTP 429, 5xx, 408                     transient; ``Retry-After`` honoured
HTTP 401, 403                          permanent: the credentials in settings are wrong (or an
                                       adapter's own advice)
other HTTP 4xx, redirects              permanent
bad URL, request that cannot be built  permanent
=====================================  ==========================================================

Answers quoted in a sentence are cut short, tags removed, and ID/phone numbers, e-mail addresses and
the personal values the caller names are masked, so a reason can be logged and shown.
"""

from __future__ import annotations

import copy
import html
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from hub.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

__all__ = [
    "body_snippet",
    "http_status_failure",
    "parse_retry_after",
    "redact",
    "redact_error",
    "transport_failure",
]

_SNIPPET = 200
_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")
_ID_OR_PHONE = re.compile(r"(?<!\d)\+?\d{9,12}(?!\d)")
_EMAIL = re.compile(r"[^@\s'\"<>()]+@[^@\s'\"<>()]+\.[A-Za-z]{2,}")


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
    return max(0.0, seconds) if math.isfinite(seconds) else None


def redact(text: str, personal: Iterable[str] = ()) -> str:
    """``text`` with the given personal values (3 characters or more), e-mail addresses and ID/phone
    numbers masked."""
    text = unicodedata.normalize("NFC", text)
    for value in sorted(
        {unicodedata.normalize("NFC", v) for v in personal if v and len(v) >= 3}, key=len, reverse=True
    ):
        text = text.replace(value, "***")
    return _ID_OR_PHONE.sub("***", _EMAIL.sub("***", text))


def body_snippet(text: str, personal: Iterable[str] = ()) -> str:
    """A short one-line excerpt of an answer: a gateway fault's or an OAuth error's text when it is one
    (WSO2's ``{"fault": …}``, ``{"error": …}``), an HTML page's title, else the text without tags; masked."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("fault"), dict):
        message, description = (str(data["fault"].get(key) or "").strip() for key in ("message", "description"))
        text = description if message in description else f"{message}: {description}".strip(": ")
    elif isinstance(data, dict) and "error" in data:
        text = str(data["error"])
    else:
        title = _TITLE.search(text)
        text = html.unescape(_TAG.sub(" ", title.group(1) if title else text))
    text = _SPACE.sub(" ", text).strip()
    if len(text) > _SNIPPET:
        text = text[: _SNIPPET - 1] + "…"
    return redact(text, personal) or "(empty body)"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def transport_failure(
    exc: Exception, *, system: str, action: str, url: str, timeout: float, setting: str = "base_url"
) -> DeliveryError:
    """Translate an httpx (or socket) exception raised while doing ``action`` against ``url``.
    ``setting`` names the route-file setting that holds the address."""
    kind = type(exc).__name__
    detail = f" ({kind}: {exc})" if str(exc) else f" ({kind})"
    who = _capital(system)
    if isinstance(exc, httpx.PoolTimeout):
        return TransientDeliveryError(
            f"No free connection to {system} for {action} within {timeout:g} s{detail}: every connection was "
            "busy with slow calls. The hub will retry; if it keeps happening, raise max_connections or check "
            "how fast it answers.",
            unsent=True,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return TransientDeliveryError(
            f"Could not connect to {system} at {url} within {timeout:g} s for {action}{detail}. The hub will "
            "retry; if it keeps happening, check the network route to it.",
            unsent=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return TransientDeliveryError(
            f"{who} did not answer {action} within {timeout:g} s{detail}. The hub will retry; if it keeps "
            "happening, check its status or raise timeout_seconds for this target."
        )
    if isinstance(exc, httpx.ConnectError):
        return TransientDeliveryError(
            f"Could not connect to {system} at {url} for {action}{detail}. The hub will retry; if it keeps "
            "happening, check that it is up and reachable from the hub.",
            unsent=True,
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return PermanentDeliveryError(
            f"The address {url} of {system} is not a valid http:// or https:// URL{detail}. Fix {setting} for "
            "this target in the route file or its environment variable, then replay."
        )
    if isinstance(exc, httpx.LocalProtocolError):
        return PermanentDeliveryError(
            f"The hub could not build a valid HTTP request to {system} for {action}{detail}. Check that the "
            "credentials for this target are plain ASCII; if they are, report this to the hub maintainers."
        )
    if isinstance(exc, httpx.ProxyError):
        return TransientDeliveryError(
            f"The HTTP proxy between the hub and {system} failed during {action}{detail}. The hub will retry; "
            "check the proxy if it keeps happening."
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return PermanentDeliveryError(
            f"{who} redirected {action} too many times{detail}. Check {setting} for this target, then replay."
        )
    if isinstance(exc, httpx.DecodingError):
        return TransientDeliveryError(f"{who}'s answer to {action} could not be decoded{detail}. The hub will retry.")
    # RemoteProtocolError, ReadError, WriteError, CloseError, other network and socket errors.
    return TransientDeliveryError(f"The connection to {system} dropped during {action}{detail}. The hub will retry.")


def http_status_failure(
    response: httpx.Response,
    *,
    system: str,
    action: str,
    personal: Iterable[str] = (),
    advice: Mapping[int, str] | None = None,
) -> DeliveryError:
    """Translate a non-2xx answer. ``advice`` replaces what the sentence says to do for 401, 403, or 400
    (meaning every 4xx without advice of its own), e.g. the portal's "ask to be subscribed"."""
    status = response.status_code
    snippet = body_snippet(response.text, personal)
    said = advice or {}
    who = _capital(system)
    if 300 <= status < 400:
        location = response.headers.get("location", "(no Location header)")
        return PermanentDeliveryError(
            f"{who} redirected {action} to {location} (HTTP {status}); base_url for this target is probably "
            "wrong (http instead of https, or a missing path). Fix it in the route file, then replay.",
            status_code=status,
        )
    if status in (401, 403):
        default = "The hub's credentials for it are wrong or lack a permission: fix them in settings, then replay."
        return PermanentDeliveryError(
            f"{who} refused {action} (HTTP {status}: {snippet}). {said.get(status, default)}", status_code=status
        )
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    wait = f" after {retry_after:g} s as it asked" if retry_after is not None else ""
    if status == 429:
        return TransientDeliveryError(
            f"{who} is throttling the hub (HTTP 429) and refused {action}. The hub will retry{wait}; if it keeps "
            "happening, ask for a higher quota.",
            status_code=status,
            retry_after=retry_after,
        )
    if status == 408:
        return TransientDeliveryError(
            f"{who} timed out reading {action} (HTTP 408). The hub will retry{wait}.",
            status_code=status,
            retry_after=retry_after,
        )
    if 400 <= status < 500:
        advice_4xx = said.get(status, said.get(400, "Fix the request, then replay."))
        return PermanentDeliveryError(
            f"{who} refused {action} as invalid (HTTP {status}: {snippet}). {advice_4xx}", status_code=status
        )
    return TransientDeliveryError(
        f"{who} answered HTTP {status} to {action} ({snippet}). The hub will retry{wait}.",
        status_code=status,
        retry_after=retry_after,
    )


def redact_error(error: DeliveryError, personal: Iterable[str]) -> DeliveryError:
    """``error`` with known personal values (names, phones, addresses a system echoed back) masked."""
    reason = redact(error.reason, personal)
    if reason == error.reason:
        return error
    redacted = copy.copy(error)
    redacted.reason = reason
    redacted.args = (reason,)
    return redacted
