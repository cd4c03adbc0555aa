"""``python -m bench.store_writes``: CPU per accepted message of the store alone, lone and grouped.

Accepts ``--messages`` dossiers into a fresh SQLite (or ``--database-url``) store, one at a time and
then in groups of 16 that arrive together (as under 32 connections), each followed by its
``pending → accepted`` record, the way the ingress writes them. Prints the process's CPU time per
message (all threads) and the wall time per message. No broker, no HTTP: the store's own cost, to
compare two commits on the same machine in the same minute.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.workload import MESSAGE_TYPE, SOURCE, dossier_code, dossier_payload
from hub.envelope import new_message_id
from hub.store import MessageStore

__all__ = ["main"]


async def measure(url: str, messages: int, groups: tuple[int, ...]) -> None:
    store = MessageStore.open(url)
    await store.migrate()
    payload = dossier_payload(dossier_code("store", 0))

    async def accept(number: int) -> None:
        message_id = new_message_id()
        await store.accept(
            message_type=MESSAGE_TYPE, source=SOURCE, dossier_code=dossier_code("store", number), payload=payload,
            targets=[("national-portal", "bench")], idempotency_key=None, message_id=message_id,
        )  # fmt: skip
        await store.mark_published(message_id, ["national-portal"], wait=False)

    try:
        number = 0
        for group in groups:
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(0, messages, group):
                await asyncio.gather(*(accept(number + i) for i in range(group)))
                number += group
            await store.drain_writes()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"store_accept_group_{group} {1e6 * cpu / messages:.0f} us_cpu_per_msg "
                f"wall={1e6 * wall / messages:.0f}us",
                flush=True,
            )
    finally:
        await store.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store_writes", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--database-url", help="a store to write into (default: a new SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-store-bench-") as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'store.db'}"
        asyncio.run(measure(url, args.messages, (1, 16)))


if __name__ == "__main__":
    main()
