"""The hand-written baselines: what a team would write talking to RabbitMQ directly.

``python -m bench.raw produce``  publishes persistent envelopes with windowed publisher confirms
                                 (up to ``--window`` unconfirmed at once), optionally at a fixed rate.
``python -m bench.raw consume``  consumes with manual acks and a prefetch; for each message makes
                                 the same ``DongBoHoSoMC`` call the hub's adapter makes (or, with
                                 ``--no-http``, nothing: the bare broker ceiling), then acks.
``python -m bench.raw ingress``  a bare FastAPI + uvicorn endpoint that publishes the body with a
                                 confirm and answers 202.

Each prints JSON lines on stdout: ``{"event": "ready"}`` when it is ready, ``{"event": "done", …}``
with its timings when it has finished (monotonic clock, comparable across processes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import uvicorn
from aio_pika.abc import AbstractIncomingMessage
from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench.workload import dossier_code, envelope_body, portal_request

__all__ = ["main"]


def emit(event: str, **fields: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps({"event": event, **fields}) + b"\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ producer


async def produce(args: argparse.Namespace) -> None:
    bodies = [envelope_body(dossier_code(args.run, args.first + i), seq=args.first + i) for i in range(args.count)]
    codes = [dossier_code(args.run, args.first + i) for i in range(args.count)]
    connection = await aio_pika.connect(args.broker, timeout=30)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(args.exchange, ensure=False)
        next_index = 0
        confirmed: dict[str, float] = {}
        called: dict[str, float] = {}
        started = time.monotonic()

        async def publish(index: int) -> None:
            message = aio_pika.Message(
                bodies[index],
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
                message_id=codes[index],
            )
            if args.rate:
                called[codes[index]] = time.monotonic()
            await exchange.publish(message, routing_key="", timeout=30)
            if args.rate:
                confirmed[codes[index]] = time.monotonic()

        async def window_slot() -> None:
            # One of ``window`` publishers in flight: together they keep up to ``window`` unconfirmed.
            nonlocal next_index
            while next_index < args.count:
                index = next_index
                next_index += 1
                await publish(index)

        if args.rate:
            tasks = []
            for index in range(args.count):
                delay = started + index / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(publish(index)))
            await asyncio.gather(*tasks)
        else:
            await asyncio.gather(*(window_slot() for _ in range(min(args.window, args.count))))
        finished = time.monotonic()
    if args.confirms_out:
        await asyncio.to_thread(Path(args.confirms_out).write_bytes, orjson.dumps({"sent": called, "done": confirmed}))
    emit("done", started_at=started, finished_at=finished, count=args.count)


# ------------------------------------------------------------------ consumer


class _Target:
    """One mock portal: a token fetched up front, then POSTs of the same body the hub's adapter sends."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.headers: dict[str, str] = {}

    async def login(self) -> None:
        reply = await self.client.post(
            f"{self.base_url}/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "bench-raw", "client_secret": "bench-raw-secret"},
        )
        reply.raise_for_status()
        self.headers = {
            "Authorization": f"Bearer {reply.json()['access_token']}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
        }

    async def call(self, body: bytes) -> None:
        payload = orjson.loads(body)["payload"]
        reply = await self.client.post(
            f"{self.base_url}/dvcqg/DongBoHoSoMC", content=portal_request(payload), headers=self.headers
        )
        if reply.status_code != 200 or orjson.loads(reply.content).get("error_code") != 0:
            raise RuntimeError(f"The mock portal refused a call: HTTP {reply.status_code} {reply.text[:200]}")


async def consume(args: argparse.Namespace) -> None:
    queues = args.queues.split(",")
    bases = args.http.split(",") if args.http else []
    if bases and len(bases) != len(queues):
        raise SystemExit("--http needs one base URL per queue")
    done = asyncio.Event()
    count = 0
    first_at: float | None = None
    last_at = 0.0
    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=50, max_keepalive_connections=50)
    ) as client:
        targets = [_Target(client, base) for base in bases]
        for target in targets:
            await target.login()
            # Warm the connection pool with one call for a dossier of its own.
            await target.call(envelope_body(dossier_code(uuid.uuid4().hex[:8], 0)))
        connection = await aio_pika.connect(args.broker, timeout=30)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=args.prefetch)

            def handler(target: _Target | None) -> Any:
                async def on_message(message: AbstractIncomingMessage) -> None:
                    nonlocal count, first_at, last_at
                    if target is not None:
                        await target.call(message.body)
                    await message.ack()
                    count += 1
                    last_at = time.monotonic()
                    first_at = first_at or last_at
                    if count >= args.expect:
                        done.set()

                return on_message

            for i, name in enumerate(queues):
                queue = await channel.get_queue(name, ensure=False)
                await queue.consume(handler(targets[i] if targets else None))
            emit("ready")
            await done.wait()
    emit("done", count=count, first_at=first_at, last_at=last_at)


# ------------------------------------------------------------------ bare ingress


def ingress(args: argparse.Namespace) -> None:
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        connection = await aio_pika.connect(args.broker, timeout=30)
        channel = await connection.channel(publisher_confirms=True)
        state["exchange"] = await channel.get_exchange(args.exchange, ensure=False)
        yield
        await connection.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/messages", status_code=202)
    async def post_message(request: Request) -> Response:
        message_id = str(uuid.uuid4())
        await state["exchange"].publish(
            aio_pika.Message(
                await request.body(),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
                message_id=message_id,
            ),
            routing_key="",
            timeout=30,
        )
        return Response(orjson.dumps({"id": message_id}), status_code=202, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw", description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("produce")
    p.add_argument("--exchange", required=True)
    p.add_argument("--run", required=True, help="run id, part of every dossier code")
    p.add_argument("--first", type=int, default=0, help="number of the first dossier")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--window", type=int, default=256, help="unconfirmed publishes in flight")
    p.add_argument("--rate", type=float, default=0.0, help="messages per second (0 = as fast as confirms allow)")
    p.add_argument("--confirms-out", default="", help="with --rate: write publish and confirm times per dossier here")
    c = commands.add_parser("consume")
    c.add_argument("--queues", required=True, help="comma-separated queue names")
    c.add_argument("--http", default="", help="comma-separated mock portal base URLs, one per queue")
    c.add_argument("--run", default="raw")
    c.add_argument("--expect", type=int, required=True, help="exit after this many messages")
    c.add_argument("--prefetch", type=int, default=64)
    i = commands.add_parser("ingress")
    i.add_argument("--exchange", required=True)
    i.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.command == "produce":
        asyncio.run(produce(args))
    elif args.command == "consume":
        asyncio.run(consume(args))
    else:
        ingress(args)


if __name__ == "__main__":
    main()
