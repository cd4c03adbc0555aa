"""SOAP client of the population database: zeep over httpx, built from the WSDL kept in the repo.

The XML parser is hardened (``forbid_dtd``, ``forbid_entities``, ``forbid_external``, no huge
trees): an answer with a DTD, an entity declaration (billion laughs) or an external entity (XXE)
is refused before anything in it is read. Every zeep and transport failure leaves this module
as one of the hub's errors; :func:`translate_failure` is the table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import structlog
from zeep import AsyncClient, Settings
from zeep import exceptions as zeep_errors
from zeep.helpers import serialize_object
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from hub.plugin import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnusableReplyError,
    transport_failure,
)

__all__ = ["DEFAULT_WSDL", "HttpStatusError", "PopulationClient", "translate_failure"]

log = structlog.get_logger(__name__)

DEFAULT_WSDL = Path(__file__).with_name("wsdl") / "dancu.wsdl"
NAMESPACE = "http://www.mic.gov.vn/dancu/1.0"
BINDING = f"{{{NAMESPACE}}}DanCuBinding"


def hardened_settings() -> Settings:
    return Settings(
        strict=True,
        raw_response=False,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )


class HttpStatusError(Exception):
    """The gateway answered an HTTP status a SOAP service never uses for an answer or a fault (not 200/500).

    Raised from an httpx response hook, before zeep tries to read the body, so the status and
    ``Retry-After`` are not lost.
    """

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


async def _check_status(response: httpx.Response) -> None:
    if response.status_code not in (200, 500) and response.request.method == "POST":
        raise HttpStatusError(response.status_code, _retry_after(response.headers.get("retry-after")))


def _http_status_failure(exc: HttpStatusError, *, operation: str) -> DeliveryError:
    status = exc.status
    wait = f" after {exc.retry_after:g} s as it asked" if exc.retry_after is not None else ""
    if status == 429:
        return TransientDeliveryError(
            f"The population database is throttling the province (HTTP 429) and refused {operation}. "
            f"The hub retries{wait} while the caller waits; lower the route's rate_limit if it keeps happening.",
            status_code=429,
            retry_after=exc.retry_after,
        )
    if status in (401, 403):
        return PermanentDeliveryError(
            f"The population database refused the hub (HTTP {status}) for {operation}: the LGSP is not "
            "subscribed to this service or its credentials are wrong. Ask the NGSP operators, then try again.",
            status_code=status,
        )
    if status == 408 or status >= 500:
        return TransientDeliveryError(
            f"The population database answered {operation} with HTTP {status}. The hub retries{wait} while the "
            "caller waits.",
            status_code=status,
            retry_after=exc.retry_after,
        )
    return UnusableReplyError(
        f"The population database answered {operation} with HTTP {status}, which a SOAP service does not use. "
        "Check service_url for this target.",
        status_code=status,
    )


def translate_failure(exc: BaseException, *, operation: str, url: str, timeout: float) -> DeliveryError:
    """Turn whatever zeep or httpx raised during ``operation`` into a hub error (a sentence)."""
    if isinstance(exc, HttpStatusError):
        return _http_status_failure(exc, operation=operation)
    if isinstance(exc, zeep_errors.DTDForbidden | zeep_errors.EntitiesForbidden):
        return UnusableReplyError(
            f"The population database's answer to {operation} contains a DTD or entity declaration "
            f"({type(exc).__name__}); the hub refuses such XML (it can read local files or exhaust memory: "
            "XXE / billion laughs). Report it to the population database's operators."
        )
    if isinstance(exc, zeep_errors.Fault):
        code = str(exc.code or "")
        message = " ".join(str(exc.message or "").split())[:300]
        if "client" in code.lower():
            return PermanentDeliveryError(
                f"The population database refused {operation} as sent (SOAP fault {code}: {message}). "
                "Check the request's fields; sending it again unchanged will fail the same way."
            )
        return TransientDeliveryError(
            f"The population database failed on {operation} (SOAP fault {code or 'without a code'}: {message}). "
            "The hub retries while the caller waits."
        )
    if isinstance(exc, zeep_errors.TransportError):
        # zeep could not parse the body of a 200/500 answer.
        content = exc.content if isinstance(exc.content, bytes) else str(exc.content or "").encode()
        if b"<!DOCTYPE" in content.upper() or b"<!ENTITY" in content.upper():
            return UnusableReplyError(
                f"The population database's answer to {operation} declares entities (a DTD) that the hub will "
                "not expand: it is a billion-laughs or external-entity payload, refused for safety. "
                "Report it to the population database's operators."
            )
        return UnusableReplyError(
            f"The population database answered {operation} with HTTP {exc.status_code} and a body that is not "
            "SOAP XML. Check service_url for this target; if it is right, report it to the database's operators.",
            status_code=exc.status_code or None,
        )
    if isinstance(exc, zeep_errors.XMLSyntaxError | zeep_errors.XMLParseError | zeep_errors.ValidationError):
        return UnusableReplyError(
            f"The population database's answer to {operation} does not match the WSDL ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Report it to the population database's operators."
        )
    if isinstance(exc, httpx.HTTPError | OSError):
        return transport_failure(
            exc, system="the population database", action=operation, url=url, timeout=timeout, setting="service_url"
        )
    raise exc


class PopulationClient:
    """Calls the two identity operations; answers come back as plain dicts."""

    def __init__(self, *, service_url: str, timeout: float = 10.0, wsdl: Path = DEFAULT_WSDL) -> None:
        self.service_url = service_url
        self.timeout = timeout
        self._http = httpx.AsyncClient(timeout=timeout, event_hooks={"response": [_check_status]})
        # The WSDL is read from the repository, never fetched: this client is only for zeep's loader.
        self._wsdl_http = httpx.Client(timeout=timeout)
        # zeep has no type hints: the three calls below are checked by the contract tests instead.
        transport = AsyncTransport(client=self._http, wsdl_client=self._wsdl_http)  # type: ignore[no-untyped-call]
        self._zeep = AsyncClient(str(wsdl), transport=transport, settings=hardened_settings())  # type: ignore[no-untyped-call]
        # AsyncClient.create_service() returns a synchronous proxy (zeep 4.3): build the async one.
        self._service = AsyncServiceProxy(self._zeep, self._zeep.wsdl.bindings[BINDING], address=service_url)  # type: ignore[no-untyped-call]

    async def call(self, operation: str, fields: dict[str, str]) -> dict[str, Any]:
        try:
            reply = await getattr(self._service, operation)(**fields)
        except Exception as exc:
            raise translate_failure(exc, operation=operation, url=self.service_url, timeout=self.timeout) from exc
        data = serialize_object(reply, dict)  # type: ignore[no-untyped-call]
        if not isinstance(data, dict):
            raise UnusableReplyError(f"The population database answered {operation} with an empty reply.")
        return data

    async def check(self) -> None:
        """Fetch ``?wsdl`` from the service: proves the population database is reachable."""
        try:
            response = await self._http.get(self.service_url, params={"wsdl": ""})
        except httpx.HTTPError as exc:
            raise translate_failure(
                exc, operation="a health check", url=self.service_url, timeout=self.timeout
            ) from exc
        if response.status_code >= 400:
            raise TransientDeliveryError(
                f"The population database answered the health check with HTTP {response.status_code}.",
                status_code=response.status_code,
            )

    async def aclose(self) -> None:
        await self._http.aclose()
        self._wsdl_http.close()
