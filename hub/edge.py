"""What every request meets at the hub's edge, before anything else reads it.

* A body is read only up to its endpoint's limit: :func:`read_body` refuses a declared
  ``Content-Length`` above it at once, and stops reading (:class:`BodyTooLargeError`) as soon as a
  body sent without one grows past it, so a large body never sits in memory. Every endpoint reads its
  body with it (plugins through :mod:`hub.plugin`), never with ``await request.body()``. An answer
  sent before the body was read whole closes the connection (:func:`closing_unread_bodies`), so the
  server does not go on reading the rest.
* No control character gets in: NUL and the other C0 and C1 control characters in a request's path,
  query or headers (:func:`request_problem`, answered 400 by the ingress before routing) or in a JSON
  string (:func:`control_characters`, :func:`json_problem`, answered 4xx by the endpoint) are refused
  with a sentence. PostgreSQL cannot store a NUL at all, and none of these characters belongs in a
  dossier; tab, line feed and carriage return stay allowed inside JSON strings (free text has lines).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope, Send

from hub.errors import HubError

__all__ = [
    "BodyTooLargeError",
    "ClientDisconnect",
    "closing_unread_bodies",
    "control_characters",
    "json_problem",
    "read_body",
    "receive_body",
    "request_problem",
]

#: Control characters refused in JSON strings: C0 but tab, LF and CR; DEL; C1.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Control characters refused in a path or a query: every C0 one, DEL and C1.
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Control bytes refused in a header value (tab is allowed there by HTTP).
_HEADER_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
#: At most this many places are named in one answer.
_MAX_NAMED = 10


class BodyTooLargeError(HubError):
    """A request's body is larger than its endpoint accepts; the rest of it was not read."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        self.limit = limit
        said = f"is {size} bytes" if size is not None else f"is more than {limit} bytes"
        super().__init__(f"The body {said}; this endpoint accepts at most {limit} bytes. Send a smaller body.")


async def _limited(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(limit)
        parts.append(chunk)
    return b"".join(parts)


def _check_declared(content_length: str | None, limit: int) -> None:
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise BodyTooLargeError(limit, int(content_length))


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, read up to ``limit`` bytes. Raises :class:`BodyTooLargeError` (answer 413) as
    soon as it is known to be longer, before reading the rest, and :class:`ClientDisconnect` when the client
    goes away first."""
    _check_declared(request.headers.get("content-length"), limit)
    return await _limited(request.stream(), limit)


async def _received(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def receive_body(receive: Receive, limit: int, content_length: str | None = None) -> bytes:
    """:func:`read_body` for a plain ASGI handler (``receive`` and its ``Content-Length`` header)."""
    _check_declared(content_length, limit)
    return await _limited(_received(receive), limit)


def closing_unread_bodies(scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """``receive`` and ``send`` for an HTTP request whose answer may start before its body was read whole (a
    413, a 401 before reading): that answer then says ``Connection: close``, and the server closes the
    connection once it is sent, instead of reading and dropping the rest of a body however large it is."""
    if not any(
        name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0")
        for name, value in scope.get("headers", ())
    ):
        return receive, send
    read_whole = False

    async def tracked() -> Message:
        nonlocal read_whole
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            read_whole = True
        return message

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start" and not read_whole:
            message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        await send(message)

    return tracked, closing


def _code_point(character: str) -> str:
    return f"U+{ord(character):04X}"


def request_problem(scope: Scope) -> str | None:
    """The sentence refusing an HTTP request whose path, query or headers hold a control character; None
    when there is none."""
    found = _LINE_CONTROL.search(scope.get("path", ""))
    if found:
        return f"The address holds a control character ({_code_point(found.group())}); remove it."
    query: bytes = scope.get("query_string", b"")
    if query:
        decoded = urllib.parse.unquote(query.decode("latin-1").replace("+", " "), errors="replace")
        found = _LINE_CONTROL.search(decoded)
        if found:
            return f"The query string holds a control character ({_code_point(found.group())}); remove it."
    for name, value in scope.get("headers", ()):
        raw = _HEADER_CONTROL.search(value)
        if raw:
            return f"The {name.decode('latin-1')} header holds a control character (U+{raw.group()[0]:04X}); remove it."
    return None


def control_characters(value: Any, where: str = "") -> list[str]:
    """One sentence per string (or object key) in a parsed JSON value that holds a control character other
    than tab, LF or CR, naming its place (``payload.TaiLieuNop.0.TenTepDinhKem``); empty when there is none."""
    problems: list[str] = []
    _collect(value, where, problems)
    if len(problems) > _MAX_NAMED:
        problems[_MAX_NAMED:] = [f"{len(problems) - _MAX_NAMED} more fields hold control characters."]
    return problems


def _collect(value: Any, where: str, problems: list[str]) -> None:
    if isinstance(value, str):
        found = _TEXT_CONTROL.search(value)
        if found:
            place = f"Field '{where}'" if where else "The value"
            problems.append(f"{place} holds a control character ({_code_point(found.group())}); remove it.")
    elif isinstance(value, dict):
        for key, item in value.items():
            place = f"{where}.{key}" if where else str(key)
            found = _TEXT_CONTROL.search(str(key))
            if found:
                shown = _TEXT_CONTROL.sub("?", str(key))
                problems.append(
                    f"The field name '{shown}' holds a control character ({_code_point(found.group())}); remove it."
                )
                continue
            _collect(item, place, problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect(item, f"{where}.{index}" if where else str(index), problems)


def json_problem(raw: bytes) -> str | None:
    """The sentence refusing a JSON body with a control character in a string; None when it has none or is
    not JSON at all (the endpoint says what it expects then)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    problems = control_characters(value)
    return " ".join(problems) if problems else None
