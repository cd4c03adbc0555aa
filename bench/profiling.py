"""Sampling profiles of the hub's processes during a measured run, with py-spy.

``python -m bench --profile DIR`` attaches ``py-spy record`` to the hub worker (broker-path runs)
and the hub ingress (ingress runs), writes their collapsed stacks to ``DIR`` (open them in
https://www.speedscope.app) and prints where the time goes: the share of samples spent inside each of
a few named costs (the store, the broker client, HTTP to the target, logging, validation …).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import linecache
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from bench.services import ChildProcess

__all__ = ["COSTS", "profiled", "summarize"]

#: Named costs: a stack is counted for a cost when one of its frames matches (first match wins,
#: so order from specific to general).
COSTS: list[tuple[str, tuple[str, ...]]] = [
    ("logging (structlog + masking)", ("structlog/", "hub/observability.py")),
    ("store (SQLAlchemy + driver)", ("sqlalchemy/", "aiosqlite/", "psycopg/", "hub/store/")),
    ("broker client (aio-pika/aiormq/pamqp)", ("aio_pika/", "aiormq/", "pamqp/")),
    ("HTTP client to the target (httpx/httpcore)", ("httpx/", "httpcore/", "h11/")),
    ("HTTP server (uvicorn/starlette/fastapi)", ("uvicorn/", "starlette/", "fastapi/")),
    ("validation and mapping (pydantic, adapter)", ("pydantic/", "pydantic_core/", "adapters/", "schemas/")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("retry helper (tenacity)", ("tenacity/",)),
    ("JSON (orjson/json)", ("orjson", "json/")),
]


@contextlib.asynccontextmanager
async def profiled(child: ChildProcess | None, out_dir: Path | None, name: str) -> AsyncIterator[None]:
    """Record ``child`` with py-spy while the block runs (no-op without ``out_dir`` or py-spy)."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if child is None or out_dir is None or spy is None:
        yield
        return
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    argv = [
        spy,
        "record",
        "--pid",
        str(child.pid),
        "--rate",
        "250",
        "--gil",  # only the thread holding the GIL: CPU spent in Python, not threads waiting on a queue
        "--format",
        "raw",
        "-o",
        str(out_dir / f"{name}.txt"),
    ]
    recorder = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            recorder.send_signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.wait(), 30)


def summarize(collapsed: Path, top: int = 12) -> str:
    """Share of samples per named cost, and the hottest functions of our own code (inclusive)."""
    by_cost: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if _waiting(frames[-1]):
            continue  # a thread blocked on a queue or the event loop waiting for I/O: not a cost
        total += count
        cost = next((label for label, needles in COSTS if any(n in f for f in frames for n in needles)), "other")
        by_cost[cost] += count
        for function in {_function(f) for f in frames if _is_own(f)}:
            own[function] += count
    if not total:
        return "no busy samples"
    lines = [f"{count / total:6.1%}  {label}" for label, count in by_cost.most_common()]
    lines.append("hottest hub/adapter functions (inclusive):")
    lines += [f"{count / total:6.1%}  {function}" for function, count in own.most_common(top)]
    return "\n".join(lines)


#: ``Runner.run`` as the innermost frame is uvloop's loop (C code), nearly always waiting in epoll.
_WAITING_FUNCTIONS = ("EpollSelector.select", "Condition.wait", "SimpleQueue.get", "Queue.get", "Runner.run")


def _waiting(frame: str) -> bool:
    """True for a leaf frame that waits: the event loop's select, or a worker thread's queue get
    (py-spy counts a thread blocked inside a C call such as ``SimpleQueue.get`` as active). A stack
    py-spy could not read is left out too."""
    name, _, where = frame.partition(" (")
    if not name.strip() or name in _WAITING_FUNCTIONS:
        return True
    path, _, line = where.rstrip(")").rpartition(":")
    if not path.endswith(".py") or not line.isdigit():
        return False
    module = path.removesuffix(".py").replace("/", ".")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    source = linecache.getline(spec.origin, int(line)) if spec and spec.origin else ""
    return ".get()" in source or ".wait(" in source


def _is_own(frame: str) -> bool:
    return " (hub/" in frame or " (adapters/" in frame


def _function(frame: str) -> str:
    """``name (path:line)`` → ``name (path)``: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name
