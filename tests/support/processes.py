"""Hub processes started as a user starts them (``python -m hub ...``), for e2e and reliability tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pika

from tests.support.harness import MINISTRY_KEY, ONESTOP_KEY, RABBITMQ_URL, free_port, new_namespace

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class HubEnvironment:
    """Settings shared by every process of one hub under test."""

    database_url: str
    routes_dir: Path
    logs_dir: Path
    namespace: str = field(default_factory=lambda: new_namespace("p"))
    port: int = field(default_factory=free_port)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def delete_broker_objects(self) -> None:
        """Delete every queue and exchange of this hub's namespace (processes leave them behind)."""
        delete_namespace_queues(self.namespace)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATABASE_URL=self.database_url,
            HUB_BROKER_NAMESPACE=self.namespace,
            HUB_ROUTES_DIR=str(self.routes_dir),
            HUB_HTTP_PORT=str(self.port),
            HUB_SYSTEM_KEY_ONESTOP=ONESTOP_KEY,
            HUB_SYSTEM_KEY_MINISTRY=MINISTRY_KEY,
            HUB_LOG_FORMAT="json",
            HUB_OUTBOX_RELAY_AFTER_SECONDS="3",
            # A test hub against the mocks, on plain http at 127.0.0.1 (see harness.running_hub).
            HUB_ALLOW_SAMPLE_SECRETS="true",
            HUB_CONSOLE_SECURE_COOKIE="false",
            HUB_IDENTITY_PUBLIC_URL=self.url,
            HUB_CONSOLE_PUBLIC_URL=self.url,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra)
        return env


class HubProcess:
    """One ``python -m hub <args>`` process with its output in a log file."""

    def __init__(self, environment: HubEnvironment, *args: str, name: str | None = None) -> None:
        self.environment = environment
        self.args = args
        self.name = name or "-".join(a for a in args if not a.startswith("-"))[:40]
        self.log_path = environment.logs_dir / f"{self.name}-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> HubProcess:
        self.environment.logs_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub", *self.args],
            cwd=ROOT,
            env=self.environment.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def wait_ready(self, url: str | None = None, timeout: float = 30.0) -> None:
        """Wait until ``url`` (default: the ingress /readyz) answers 200, or the process dies."""
        target = url or f"{self.environment.url}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                if httpx.get(target, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} was not ready within {timeout} s:\n{self.output()[-3000:]}")

    def wait_log(self, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{self.name} never logged {needle!r}:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: what a crash looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


def run_cli(environment: HubEnvironment, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a one-shot ``hub`` command (``routes check``, ``replay``, ``trace`` …)."""
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=ROOT,
        env=environment.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def delete_namespace_queues(*namespaces: str) -> None:
    """Delete the queues named ``<namespace>.*`` and the ``<namespace>.deliver`` exchange of each namespace."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, timeout=60, check=False
    )
    prefixes = tuple(f"{namespace}." for namespace in namespaces)
    names = [line.strip() for line in listed.stdout.splitlines() if line.strip().startswith(prefixes)]
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for name in names:
            channel.queue_delete(name)
        for namespace in namespaces:
            channel.exchange_delete(f"{namespace}.deliver")
    finally:
        connection.close()
