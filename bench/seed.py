"""Set up a large backlog for the hub quickly: write the messages straight into its store and queue.

What the ingress would have done for each message (a message row, an ``accepted`` delivery, an
``accepted`` timeline event, the envelope on ``ns.deliver`` with the same headers) is done in bulk
here, so 200,000 queued messages take a minute or two instead of half an hour through the
publish path (that path is measured by the broker-path and ingress benchmarks). The worker that
drains them cannot tell the difference.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aio_pika
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.services import BROKER_URL
from bench.workload import MESSAGE_TYPE, SOURCE, dossier_code, dossier_payload
from hub.broker import ATTEMPT_HEADER, DOSSIER_HEADER, TYPE_HEADER
from hub.envelope import Envelope, encode_envelope, new_message_id
from hub.store import DeliveryState, MessageStore
from hub.store.models import DeliveryEventRow, DeliveryRow, MessageRow

__all__ = ["seed_hub_backlog"]


async def seed_hub_backlog(
    *,
    database_url: str,
    namespace: str,
    target: str,
    route: str,
    run_id: str,
    first: int,
    count: int,
    chunk: int = 2000,
    window: int = 256,
) -> None:
    store = MessageStore.open(database_url)
    engine = store.engine
    connection = await aio_pika.connect(BROKER_URL, timeout=15)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{namespace}.deliver", ensure=False)
        for start in range(first, first + count, chunk):
            size = min(chunk, first + count - start)
            envelopes = await _store_chunk(engine, target, route, run_id, start, size)
            await _publish_chunk(exchange, target, envelopes, window)
    finally:
        await connection.close()
        await store.aclose()


async def _store_chunk(
    engine: AsyncEngine, target: str, route: str, run_id: str, start: int, size: int
) -> list[Envelope]:
    now = datetime.now(UTC)
    rows = []
    for n in range(start, start + size):
        payload = dossier_payload(dossier_code(run_id, n))
        rows.append(
            {
                "id": new_message_id(),
                "type": MESSAGE_TYPE,
                "source": SOURCE,
                "dossier_code": payload["MaHoSo"],
                "idempotency_key": None,
                "payload": payload,
                "accepted_at": now,
            }
        )
    async with engine.begin() as conn:
        inserted = await conn.execute(
            insert(MessageRow).returning(MessageRow.id, MessageRow.seq, sort_by_parameter_order=True), rows
        )
        seqs = dict(inserted.all())
        await conn.execute(
            insert(DeliveryRow),
            [
                {
                    "message_id": row["id"],
                    "target": target,
                    "route": route,
                    "state": DeliveryState.ACCEPTED,
                    "attempts": 0,
                    "published_at": now,
                    "updated_at": now,
                }
                for row in rows
            ],
        )
        await conn.execute(
            insert(DeliveryEventRow),
            [{"message_id": row["id"], "target": None, "kind": "accepted", "at": now} for row in rows],
        )
    return [
        Envelope(
            id=row["id"],
            seq=seqs[row["id"]],
            type=MESSAGE_TYPE,
            source=SOURCE,
            dossier_code=row["dossier_code"],
            payload=row["payload"],
            accepted_at=now,
        )
        for row in rows
    ]


async def _publish_chunk(exchange: Any, target: str, envelopes: list[Envelope], window: int) -> None:
    pending = iter(envelopes)

    async def slot() -> None:
        for envelope in pending:
            await exchange.publish(
                aio_pika.Message(
                    encode_envelope(envelope),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                    message_id=envelope.id,
                    headers={ATTEMPT_HEADER: 1, TYPE_HEADER: envelope.type, DOSSIER_HEADER: envelope.dossier_code},
                ),
                routing_key=target,
                timeout=60,
            )

    await asyncio.gather(*(slot() for _ in range(window)))
