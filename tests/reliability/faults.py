"""The faults the reliability suite injects, and what it measures while they last.

* a target that refuses connections: :class:`tests.support.proxy.SwitchableProxy` (shared with the
  integration tests).
* :func:`broker_stopped` – ``rabbitmqctl stop_app`` … ``start_app``; always restarts it.
* :func:`terminate_backends` – ``pg_terminate_backend`` on every connection to one test database.
* :func:`rss_bytes`, :func:`queue_depth` – what fault 6 watches.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pika

from tests.reliability.reconciliation import connect

__all__ = [
    "broker_stopped",
    "dead_letters",
    "publish_raw",
    "queue_depth",
    "rss_bytes",
    "terminate_backends",
]

RABBITMQCTL_TIMEOUT = 120


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=RABBITMQCTL_TIMEOUT, check=False
    )


def rabbitmqctl_available() -> bool:
    return shutil.which("rabbitmqctl") is not None and _rabbitmqctl("status").returncode == 0


@contextlib.contextmanager
def broker_stopped() -> Iterator[None]:
    """Stop the RabbitMQ application for the body of the ``with``; start it again even on failure.

    This stops the broker for every user of this machine: keep the body short.
    """
    stopped = _rabbitmqctl("stop_app")
    try:
        if stopped.returncode != 0:
            raise AssertionError(f"rabbitmqctl stop_app failed: {stopped.stderr or stopped.stdout}")
        yield
    finally:
        started = _rabbitmqctl("start_app")
        awaited = _rabbitmqctl("await_startup")
        if started.returncode != 0 or awaited.returncode != 0:
            raise AssertionError(
                "RabbitMQ did not start again; run `rabbitmqctl start_app` by hand: "
                f"{started.stderr or started.stdout} {awaited.stderr or awaited.stdout}"
            )


def terminate_backends(admin_dsn: str, database: str) -> int:
    """Cut every connection to ``database`` (the hub's), never another database's; return how many."""
    with connect(admin_dsn) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return sum(1 for (terminated,) in rows if terminated)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux ``/proc``), 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in ``queue`` (not counting those a consumer holds unacknowledged)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        declared = channel.queue_declare(queue, passive=True)
        return int(declared.method.message_count)
    finally:
        connection.close()


def dead_letters(amqp_url: str, queue: str) -> list[tuple[str | None, str | None]]:
    """``(message id, reason)`` of every message in a dead-letter queue; they stay in the queue."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, properties, _body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            reason = (properties.headers or {}).get("x-hub-reason")
            found.append((properties.message_id, reason.decode() if isinstance(reason, bytes) else reason))
        return found
    finally:
        connection.close()  # unacknowledged messages return to the queue


def publish_raw(amqp_url: str, exchange: str, routing_key: str, body: bytes, message_id: str) -> None:
    """Publish bytes straight to the broker, past the ingress (what a misbehaving system could do)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(message_id=message_id, delivery_mode=2, content_type="application/json"),
            mandatory=True,
        )
    finally:
        connection.close()
