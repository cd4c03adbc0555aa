"""An HTTP load generator in its own process: ``python -m bench.loadgen --url … --rate R --duration S``.

Open loop (``--rate``): sends at a fixed offered load whatever the answers take, and records
when each dossier's request was sent and when its 202 came back (for latency). Closed loop
(``--concurrency``, used when ``wrk`` is not installed): that many clients post back to back
for ``--duration`` seconds.
Prints ``{"event": "done", …}`` on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx
import orjson

from bench.workload import dossier_code, ingress_body

__all__ = ["main"]


async def open_loop(args: argparse.Namespace) -> dict[str, object]:
    total = int(args.rate * args.duration)
    codes = [dossier_code(args.run, args.first + i) for i in range(total)]
    bodies = [ingress_body(code) for code in codes]
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    accepted: dict[str, float] = {}
    sent: dict[str, float] = {}
    errors = 0
    limits = httpx.Limits(max_connections=args.max_connections, max_keepalive_connections=args.max_connections)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def send(index: int) -> None:
            nonlocal errors
            sent[codes[index]] = time.monotonic()
            try:
                reply = await client.post(args.url, content=bodies[index], headers=headers)
            except httpx.HTTPError:
                errors += 1
                return
            if reply.status_code == 202:
                accepted[codes[index]] = time.monotonic()
            else:
                errors += 1

        started = time.monotonic()
        tasks = []
        for index in range(total):
            delay = started + index / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(index)))
        await asyncio.gather(*tasks)
        finished = time.monotonic()
    if args.out:
        await asyncio.to_thread(Path(args.out).write_bytes, orjson.dumps({"sent": sent, "done": accepted}))
    return {"started_at": started, "finished_at": finished, "sent": total, "accepted": len(accepted), "errors": errors}


async def closed_loop(args: argparse.Namespace) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    counter = args.first
    ok = errors = 0
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        deadline = time.monotonic() + args.duration

        async def client_loop() -> None:
            nonlocal counter, ok, errors
            while time.monotonic() < deadline:
                counter += 1
                try:
                    reply = await client.post(
                        args.url, content=ingress_body(dossier_code(args.run, counter)), headers=headers
                    )
                except httpx.HTTPError:
                    errors += 1
                    continue
                if reply.status_code == 202:
                    ok += 1
                else:
                    errors += 1

        started = time.monotonic()
        await asyncio.gather(*(client_loop() for _ in range(args.concurrency)))
        finished = time.monotonic()
    return {"started_at": started, "finished_at": finished, "accepted": ok, "errors": errors}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True, help="system key (bearer)")
    parser.add_argument("--run", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests per second")
    parser.add_argument("--concurrency", type=int, default=32, help="closed loop: clients")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--out", default="", help="open loop: write {dossier code: 202 time} here")
    args = parser.parse_args(argv)
    result = asyncio.run(open_loop(args) if args.rate else closed_loop(args))
    sys.stdout.buffer.write(orjson.dumps({"event": "done", **result}) + b"\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
