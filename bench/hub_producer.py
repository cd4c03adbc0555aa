"""Feed the hub through its own publish path, without HTTP: ``python -m bench.hub_producer --count N``.

For each message it does what the ingress does after validation (:func:`hub.services.submit`): the
message and a pending delivery per routed target stored in one transaction, published to every
target with a broker confirm, the confirm recorded (not waited for, as in the ingress). ``--concurrency`` messages are
in flight at once (like that many
concurrent requests). Settings come from the ``HUB_*`` environment, as for the ``hub`` command.
Prints ``{"event": "done", "started_at": …, "finished_at": …}`` (monotonic clock).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson

from bench.workload import MESSAGE_TYPE, SOURCE, dossier_code, dossier_payload
from hub.bootstrap import build_hub
from hub.observability import configure_logging
from hub.services import Publisher, submit
from hub.settings import HubSettings

__all__ = ["main"]


async def produce(run: str, first: int, count: int, concurrency: int) -> tuple[float, float]:
    settings = HubSettings()
    configure_logging(settings.log_level, settings.log_format)
    hub = build_hub(settings)
    await hub.start()
    publisher = Publisher(hub)
    routes = hub.routes.routes_for(MESSAGE_TYPE, SOURCE)
    payloads = [dossier_payload(dossier_code(run, first + i)) for i in range(count)]
    next_index = 0

    async def slot() -> None:
        nonlocal next_index
        while next_index < count:
            payload = payloads[next_index]
            next_index += 1
            await submit(  # what the ingress does after validation
                hub,
                publisher,
                message_type=MESSAGE_TYPE,
                source=SOURCE,
                payload=payload,
                routes=routes,
                idempotency_key=None,
                if_unconfirmed="refuse",
                wait_for_record=False,
            )

    try:
        started = time.monotonic()
        await asyncio.gather(*(slot() for _ in range(min(concurrency, count))))
        finished = time.monotonic()
    finally:
        await hub.aclose()
    return started, finished


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hub_producer", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run id, part of every dossier code")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    started, finished = asyncio.run(produce(args.run, args.first, args.count, args.concurrency))
    sys.stdout.buffer.write(
        orjson.dumps({"event": "done", "started_at": started, "finished_at": finished, "count": args.count}) + b"\n"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
