"""``hub run --demo`` as a new user runs it: from a folder of their own, twice, and without a broker.

Each demo here runs in a temporary folder (its ``var/`` is there) on a namespace ``demo-…`` of its
own, which the demo deletes when it stops, as it does with its default namespace ``demo``.
"""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.console import csrf_of
from tests.support.harness import free_port, free_port_run, new_namespace

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "hub", "run", "--demo", "--dossiers", "1", "--rate", "50"]
FIRST_DOSSIER = "H15.50.05.13-261005-0001"  # the mock one-stop system's first dossier, every run


@dataclass
class Demo:
    folder: Path
    env: dict[str, str]
    mock_port_base: int
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, *extra: str) -> Demo:
        self.log = self.folder / f"demo-{time.monotonic_ns()}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*DEMO, "--mock-port-base", str(self.mock_port_base), *extra],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log else ""

    def wait_output(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return
            assert self.process is not None
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"the demo never printed {needle!r}:\n{self.output()[-3000:]}")

    def interrupt(self) -> int:
        """Ctrl-C, as in a terminal; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the demo did not stop within 30 s of Ctrl-C:\n{self.output()[-3000:]}") from None

    def shell(self, command: str) -> subprocess.CompletedProcess[str]:
        """A command in a shell of the demo's folder, as the person at the terminal types it."""
        return subprocess.run(
            ["sh", "-c", command],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def saved(self) -> dict[str, str]:
        """The variables of var/demo.env."""
        values: dict[str, str] = {}
        for line in (self.folder / "var/demo.env").read_text(encoding="utf-8").splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                values[name] = shlex.split(value)[0]
        return values


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_ROUTES_DIR=str(ROOT / "routes"),
        HUB_BROKER_NAMESPACE=new_namespace("demo-"),
        HUB_HTTP_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    running = Demo(tmp_path, env, free_port_run(7))
    yield running
    if running.process is not None and running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def _queues_of(namespace: str) -> list[str]:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, timeout=60, check=True
    )
    return [line for line in listed.stdout.split() if line.startswith(f"{namespace}.")]


def _wait_delivered(hub_url: str, key: str, code: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The dossier's messages once every one is delivered to every target."""
    deadline = time.monotonic() + timeout
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        answer = httpx.get(f"{hub_url}/v1/dossiers/{code}/messages", headers={"Authorization": f"Bearer {key}"})
        if answer.status_code == 200:
            messages = answer.json()["messages"]
            states = [d["state"] for m in messages for d in m["deliveries"]]
            if len(messages) == 10 and all(state == "delivered" for state in states):
                return messages
        time.sleep(0.5)
    raise AssertionError(f"dossier {code} was not delivered within {timeout} s: {messages}")


def test_the_demo_hands_out_its_key_login_and_curl_and_starts_clean_the_next_time(demo: Demo) -> None:
    namespace = demo.env["HUB_BROKER_NAMESPACE"]
    portal = f"http://127.0.0.1:{demo.mock_port_base + 1}"
    demo.start()
    demo.wait_output("Demo running.")
    saved = demo.saved()
    hub_url, key = saved["HUB_URL"], saved["HUB_SYSTEM_KEY_ONESTOP"]
    assert key.startswith("demo-")
    assert key in demo.output()  # on the screen too
    assert saved["HUB_DEMO_CONSOLE_PASSWORD"] in demo.output()
    assert (demo.folder / "var/demo.env").stat().st_mode & 0o077 == 0  # it holds the key: the owner's only
    demo.wait_output("The mock one-stop system finished")
    _wait_delivered(hub_url, key, FIRST_DOSSIER)

    # The console login it printed works, with the operator's role.
    with httpx.Client(base_url=hub_url) as console:
        form = console.get("/console/login")
        login = console.post(
            "/console/login",
            data={
                "username": saved["HUB_DEMO_CONSOLE_USER"],
                "password": saved["HUB_DEMO_CONSOLE_PASSWORD"],
                "csrf": csrf_of(form.text),
            },
        )
        assert login.status_code == 303, login.text
        assert console.get("/console").status_code == 200

    # The curl it printed is accepted as it stands, and `hub trace` finds the dossier after `. var/demo.env`.
    curl = next(
        line[2:] for line in (demo.folder / "var/demo.env").read_text().splitlines() if line.startswith("# curl")
    )
    sent = demo.shell(curl)
    assert '"duplicate":false' in sent.stdout, sent
    code = curl.split("Idempotency-Key: ", 1)[1].split(":", 1)[0]
    trace = demo.shell(f". var/demo.env && hub trace {code}")
    assert trace.returncode == 0, trace.stderr
    assert "dossier.upserted" in trace.stdout

    assert demo.interrupt() == 0, demo.output()[-3000:]
    assert _queues_of(namespace) == []

    # A second run: the same dossier codes and keys as the first, but a fresh store, so they are new.
    demo.start()
    demo.wait_output("Demo running.")
    assert "The previous demo's store was moved to" in demo.output()
    previous = list((demo.folder / "var/demo/previous").glob("hub-*.db"))
    assert len(previous) == 1
    with sqlite3.connect(previous[0]) as kept:
        assert kept.execute("SELECT count(*) FROM messages").fetchone()[0] == 11
    second = demo.saved()
    assert second["HUB_DEMO_CONSOLE_PASSWORD"] != saved["HUB_DEMO_CONSOLE_PASSWORD"]
    demo.wait_output("The mock one-stop system finished")
    messages = _wait_delivered(second["HUB_URL"], second["HUB_SYSTEM_KEY_ONESTOP"], FIRST_DOSSIER)
    assert "0 already known to the hub" in demo.output()
    assert len(messages) == 10
    stats = httpx.get(f"{portal}/_mock/stats").json()
    assert stats["duplicates"] == 0, stats
    dead = demo.shell(". var/demo.env && hub dlq list")
    assert "0 dead-lettered message(s)." in dead.stdout, dead
    assert demo.interrupt() == 0, demo.output()[-3000:]


def test_the_demo_without_a_broker_says_what_to_do_and_exits(demo: Demo) -> None:
    # 127.0.0.2 is this machine too, but not "local" to the demo: it gives the install sentence.
    demo.env["HUB_BROKER_URL"] = f"amqp://guest:guest@127.0.0.2:{free_port()}/"
    started = time.monotonic()
    demo.start()
    assert demo.process is not None
    code = demo.process.wait(timeout=30)
    assert code == 3, demo.output()
    assert time.monotonic() - started < 15
    output = demo.output()
    assert "The demo needs RabbitMQ, and nothing answers at amqp://guest:***@127.0.0.2" in output
    assert "sudo apt-get install rabbitmq-server" in output
    assert "docker run -d --name rabbitmq" in output
    assert "Bản demo cần RabbitMQ" in output
    assert not (demo.folder / "var").exists()  # nothing was set up for a run that cannot start


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or Path("/run/systemd/system").is_dir(),
    reason="the demo starts RabbitMQ only as root; under systemd it would start the machine's real one",
)
def test_the_demo_starts_a_stopped_local_rabbitmq_and_says_when_it_does_not_come_up(demo: Demo) -> None:
    started_with = demo.folder / "rabbitmq-server-called"
    fake = demo.folder / "bin/rabbitmq-server"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {started_with}\n')
    fake.chmod(0o755)
    demo.env["PATH"] = f"{fake.parent}{os.pathsep}{demo.env['PATH']}"
    demo.env["HUB_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    demo.start("--broker-wait", "2")
    assert demo.process is not None
    assert demo.process.wait(timeout=30) == 3, demo.output()
    assert started_with.read_text().split() == ["-detached"]
    assert "RabbitMQ is installed but not running; starting it:" in demo.output()
    assert "did not answer at amqp://guest:***@127.0.0.1" in demo.output()
    # Told not to, it only says how.
    started_with.unlink()
    demo.start("--no-start-broker")
    assert demo.process.wait(timeout=30) == 3
    assert not started_with.exists()
    assert "sudo systemctl start rabbitmq-server" in demo.output()
