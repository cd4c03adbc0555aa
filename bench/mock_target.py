"""The mock national portal as the benchmarks' target: ``python -m bench.mock_target --port P --portals N``.

It serves N independent copies of the real mock (:mod:`mocks.national_portal`) under ``/p1`` …
``/pN`` (one per hub target, so 16 targets do not see each other's dossiers), and adds what
the benchmarks need around them, at the same cost for the hub and for the baselines:

* counts accepted calls (``error_code`` 0) per ``(portal, MaHoSo)`` and when the last one came;
* optionally records when each dossier's first call arrived (for latency);
* optionally fails the first call of a fixed share of dossiers with HTTP 503 (retry overhead);
* forgets the mock's call log and dossiers now and then, so a 200,000-message run does not
  grow the mock (every benchmark dossier is created once, so nothing depends on them).

Control: ``GET /_bench/stats``, ``POST /_bench/reset`` (JSON ``{"fail_first_percent": 10,
"record_arrivals": true}``), ``GET /_bench/arrivals``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from mocks.national_portal._state import PortalState
from mocks.national_portal.app import create_app

__all__ = ["BenchTarget", "main"]

_SERVICE = "/dvcqg/"
_TRIM_ABOVE_CALLS = 5_000


@dataclass
class _Counters:
    fail_first_percent: int = 0
    record_arrivals: bool = False
    accepted: set[tuple[int, str]] = field(default_factory=set)
    accepted_calls: int = 0
    rejected: int = 0
    http_errors: int = 0
    injected_failures: int = 0
    failed_once: set[tuple[int, str]] = field(default_factory=set)
    arrivals: dict[str, float] = field(default_factory=dict)
    first_at: float | None = None
    last_at: float | None = None

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "accepted_calls": self.accepted_calls,
            "rejected": self.rejected,
            "http_errors": self.http_errors,
            "injected_failures": self.injected_failures,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


class BenchTarget:
    """ASGI app: ``/p<i>/…`` goes to mock portal i (path prefix removed); ``/_bench/…`` is the control API."""

    def __init__(self, portals: int) -> None:
        self.portals = [create_app() for _ in range(portals)]
        self.states: list[PortalState] = [app.state.portal for app in self.portals]
        self.counters = _Counters()
        self._trimmer: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/_bench/"):
            await self._control(scope, receive, send)
            return
        prefix, _, rest = path[1:].partition("/")
        index = int(prefix[1:]) - 1 if prefix[:1] == "p" and prefix[1:].isdigit() else -1
        if not 0 <= index < len(self.portals):
            await _json(send, 404, {"detail": f"No mock portal at /{prefix}; use /p1 … /p{len(self.portals)}."})
            return
        inner = dict(scope, path="/" + rest, raw_path=("/" + rest).encode())
        if not inner["path"].startswith(_SERVICE):
            await self.portals[index](inner, receive, send)
            return
        await self._service_call(index, inner, receive, send)

    async def _service_call(self, index: int, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        arrived = time.monotonic()
        code = _dossier_code(body)
        counters = self.counters
        key = (index, code)
        if code and counters.record_arrivals:
            counters.arrivals.setdefault(code, arrived)
        if (
            code
            and counters.fail_first_percent
            and key not in counters.failed_once
            and zlib.crc32(code.encode()) % 100 < counters.fail_first_percent
        ):
            counters.failed_once.add(key)
            counters.injected_failures += 1
            await _json(send, 503, {"fault": {"code": 900503, "message": "Service Unavailable (injected)"}})
            return
        reply: dict[str, Any] = {"status": None, "start": b""}

        async def capturing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                reply["status"] = message["status"]
            elif message["type"] == "http.response.body" and len(reply["start"]) < 32:
                reply["start"] += message.get("body", b"")
            await send(message)

        await self.portals[index](scope, _replay(body, receive), capturing_send)
        if reply["status"] != 200:
            counters.http_errors += 1
        elif reply["start"].startswith(b'{"error_code":0'):
            counters.accepted_calls += 1
            counters.accepted.add(key)
            now = time.monotonic()
            counters.first_at = counters.first_at or now
            counters.last_at = now
        else:
            counters.rejected += 1

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/_bench/stats" and method == "GET":
            await _json(send, 200, self.counters.stats())
        elif path == "/_bench/arrivals" and method == "GET":
            await _json(send, 200, self.counters.arrivals)
        elif path == "/_bench/reset" and method == "POST":
            raw = await _read_body(receive)
            options = orjson.loads(raw) if raw else {}
            self.counters = _Counters(
                fail_first_percent=int(options.get("fail_first_percent", 0)),
                record_arrivals=bool(options.get("record_arrivals", False)),
            )
            for state in self.states:
                async with state.lock:
                    state.reset_calls_and_dossiers()
            await _json(send, 200, self.counters.stats())
        else:
            await _json(send, 404, {"detail": "Unknown control endpoint."})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._trimmer = asyncio.create_task(self._trim_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._trimmer is not None:
                    self._trimmer.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _trim_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for state in self.states:
                if len(state.calls) > _TRIM_ABOVE_CALLS:
                    async with state.lock:
                        state.reset_calls_and_dossiers()


def _dossier_code(body: bytes) -> str:
    try:
        data = orjson.loads(body)
        item = data["data"][0] if "data" in data else data
        return str(item.get("MaHoSo") or "")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return ""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _json(send: Send, status: int, content: Any) -> None:
    body = orjson.dumps(content)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mock_target", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--portals", type=int, default=16, help="independent mock portals under /p1 … /pN")
    args = parser.parse_args(argv)
    uvicorn.run(
        BenchTarget(args.portals),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
