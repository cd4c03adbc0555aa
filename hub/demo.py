"""Demo mode of ``hub run --demo``: every mock government system, and a one-stop system sending dossiers.

The mocks are not the core's: they come from the entry point of the group ``hub.demo`` (the ``mocks``
package ships one, ``mocks.demo:demo_runner``), which says which mocks listen on which ports after
``--mock-port-base`` (default 8080) and serves them. The demo points the shipped route files at them
through the environment variables those files read. A hub installed without them says so and exits 2.

Each run starts clean and says how to reach it:
- a fresh store, ``var/demo/hub.db``; the previous run's is moved to ``var/demo/previous/`` (the newest
  few are kept), because the mocks start empty and the mock one-stop system sends the same dossier
  codes and Idempotency-Keys every run;
- its own broker namespace, ``demo``, whose queues are deleted when the demo starts and stops (so are
  those of a namespace set in HUB_BROKER_NAMESPACE that starts with ``demo-``; any other is left alone);
- a fresh system key and a console account (``operator``), printed and written to ``var/demo.env``.

Before any of that it checks that RabbitMQ answers, and says in one sentence what to do when it
does not (starting a local ``rabbitmq-server`` itself where it is installed and the user may).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aio_pika
import httpx
import orjson

from hub.broker import Topology
from hub.console._auth import hash_password
from hub.errors import BrokerUnavailableError, HubError
from hub.routing import RouteTable
from hub.settings import HubSettings, environment

__all__ = [
    "DEFAULT_MOCK_PORT_BASE",
    "DEMO_ENTRY_POINT_GROUP",
    "DEMO_NAMESPACE",
    "DemoMock",
    "DemoMocks",
    "DemoRun",
    "DemoUnavailableError",
    "delete_demo_queues",
    "ensure_broker",
    "load_demo_mocks",
    "prepare_demo",
]

DEFAULT_MOCK_PORT_BASE = 8080
#: The entry-point group where the demo's mock systems are found.
DEMO_ENTRY_POINT_GROUP = "hub.demo"
DEMO_NAMESPACE = "demo"
DEMO_DIR = Path("var/demo")
DEMO_ENV_FILE = Path("var/demo.env")
#: Stores of earlier runs kept in var/demo/previous/ (older ones are deleted, and the screen says so).
KEEP_PREVIOUS_STORES = 3
CONSOLE_USER = "operator"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}

MockRunner = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class DemoUnavailableError(HubError):
    """No mock systems are installed for the demo (no entry point in the group ``hub.demo``)."""


class DemoMock(Protocol):
    """One mock system, as the demo shows it and points the route files at it."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def env(self) -> str:
        """The variable the route file reads for the mock's address."""

    @property
    def path(self) -> str:
        """Appended to ``url`` in that variable."""

    @property
    def look(self) -> str:
        """Where a person looks at the mock (a path after ``url``)."""


class DemoMocks(Protocol):
    """What the ``hub.demo`` entry point gives: the mock systems and how to serve them."""

    def mocks(self, port_base: int) -> Sequence[DemoMock]:
        """The mocks, listening on ports after ``port_base``."""

    async def run(
        self,
        *,
        port_base: int,
        hub_url: str,
        key: str,
        dossiers: int,
        rate: float,
        environ: Mapping[str, str],
        stop: asyncio.Event,
        started: Callable[[], Awaitable[None]],
        echo: Callable[[str], None],
    ) -> None:
        """Serve the mocks until ``stop`` is set and send ``dossiers`` (0: without end) at ``rate`` per
        second to the hub with ``key``; await ``started`` once they serve; ``echo`` what is sent."""


def load_demo_mocks() -> DemoMocks:
    """The mock systems installed for the demo (the first entry point of ``hub.demo`` by name)."""
    found = sorted(entry_points(group=DEMO_ENTRY_POINT_GROUP), key=lambda point: point.name)
    if not found:
        raise DemoUnavailableError(
            "`hub run --demo` needs the mock government systems, and none is installed here (nothing in the "
            f"entry-point group {DEMO_ENTRY_POINT_GROUP}): install the hub from its source with `make install` "
            "(or `pip install -e .`), which brings the mocks, or run the hub without --demo.\n"
            "Bản demo cần các hệ thống giả lập nhưng chúng chưa được cài: cài hub từ mã nguồn bằng `make install`, "
            "hoặc chạy hub không có --demo."
        )
    loaded: DemoMocks = found[0].load()
    return loaded


# ---------------------------------------------------------------------------- the broker


async def _probe_broker(url: str, timeout: float) -> str | None:
    """None when RabbitMQ answers at ``url``; otherwise why not, in a few words."""
    try:
        connection = await aio_pika.connect(url, timeout=timeout)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPException) as exc:
        return str(exc) or type(exc).__name__
    await connection.close()
    return None


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _local_rabbitmq_server() -> str | None:
    """The rabbitmq-server program of this machine, when it is installed."""
    return shutil.which("rabbitmq-server") or next(
        (p for p in ("/usr/sbin/rabbitmq-server", "/usr/lib/rabbitmq/bin/rabbitmq-server") if Path(p).exists()), None
    )


def _start_command(program: str) -> list[str]:
    """How to start the local RabbitMQ: through systemd where it runs, else the program detached."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        return ["systemctl", "start", "rabbitmq-server"]
    return [program, "-detached"]


def ensure_broker(url: str, *, start: bool = True, wait: float = 60.0, probe_timeout: float = 3.0) -> list[str]:
    """Check that RabbitMQ answers at ``url`` within a few seconds; raise BrokerUnavailableError with
    what to do when it does not. Where it is installed on this machine but stopped, the URL is local,
    ``start`` is true and this process may start services (root), start it and wait up to ``wait``
    seconds. Returns the lines to show the person (what the demo did)."""
    problem = asyncio.run(_probe_broker(url, probe_timeout))
    if problem is None:
        return []
    said: list[str] = []
    program = _local_rabbitmq_server()
    local = (urlsplit(url).hostname or "") in _LOCAL_HOSTS
    may_start = hasattr(os, "geteuid") and os.geteuid() == 0
    if program and local and start and may_start:
        command = _start_command(program)
        said.append(
            f"RabbitMQ is installed but not running; starting it: {shlex.join(command)}\n"
            f"RabbitMQ đã cài nhưng chưa chạy; đang khởi động: {shlex.join(command)}"
        )
        _say(said[-1])
        subprocess.run(command, check=False, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            problem = asyncio.run(_probe_broker(url, probe_timeout))
            if problem is None:
                return said
            time.sleep(1.0)
        raise BrokerUnavailableError(
            f"RabbitMQ was started with `{shlex.join(command)}` but did not answer at {_redacted(url)} within "
            f"{wait:.0f} s ({problem}); look at its log (/var/log/rabbitmq/) and run `make demo` again.\n"
            f"Đã khởi động RabbitMQ nhưng sau {wait:.0f} giây vẫn không kết nối được; xem nhật ký của RabbitMQ "
            "rồi chạy lại `make demo`."
        )
    if program and local:
        how = (
            "It is installed here but not running: start it with `sudo systemctl start rabbitmq-server` "
            "(or `sudo rabbitmq-server -detached`)."
        )
        how_vi = "RabbitMQ đã cài trên máy này nhưng chưa chạy: khởi động bằng `sudo systemctl start rabbitmq-server`."
    else:
        how = (
            "Install it with `sudo apt-get install rabbitmq-server` (Debian/Ubuntu), or run it in a container with "
            "`docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3-management`, "
            "or set HUB_BROKER_URL to a RabbitMQ you have."
        )
        how_vi = (
            "Cài bằng `sudo apt-get install rabbitmq-server` (Debian/Ubuntu) hoặc chạy container "
            "`docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3-management`."
        )
    raise BrokerUnavailableError(
        f"The demo needs RabbitMQ, and nothing answers at {_redacted(url)} ({problem}). {how}\n"
        f"Bản demo cần RabbitMQ nhưng không kết nối được tới {_redacted(url)}. {how_vi}"
    )


async def delete_demo_queues(url: str, topology: Topology, routes: RouteTable) -> int:
    """Delete the demo namespace's exchange and queues (its messages belong to a finished run)."""
    names = [topology.dlq(t) for t in routes.delivery_targets()]
    names += [topology.target_queue(t) for t in routes.delivery_targets()]
    names += [topology.retry_queue(t, d) for t in routes.delivery_targets() for d in routes.retry_delays(t)]
    names += [topology.request_queue(t) for t in routes.request_targets()]
    deleted = 0
    connection = await aio_pika.connect(url, timeout=10)
    try:
        for name in names:
            channel = await connection.channel()  # a failed delete closes its channel
            try:
                await channel.queue_delete(name)
                deleted += 1
            except aio_pika.exceptions.ChannelClosed:
                continue
            await channel.close()
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
            await channel.exchange_delete(topology.deliver_exchange)
    finally:
        await connection.close()
    return deleted


# ---------------------------------------------------------------------------- one run


@dataclass(slots=True)
class DemoRun:
    """What one ``hub run --demo`` uses, and what it tells the person at the terminal."""

    settings: HubSettings
    key: str
    console_password: str
    owns_namespace: bool
    notes: list[str] = field(default_factory=list)
    runner: MockRunner | None = None
    mocks: Sequence[DemoMock] = ()
    #: The dossier of the curl printed for the person: a counter no generated dossier has (9xxx).
    manual_code: str = field(
        default_factory=lambda: (
            f"H15.50.05.13-{datetime.now(ZoneInfo('Asia/Ho_Chi_Minh')):%y%m%d}-{9000 + secrets.randbelow(1000)}"
        )
    )

    @property
    def hub_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def env_lines(self) -> str:
        values = {
            "HUB_URL": self.hub_url,
            "HUB_SYSTEM_KEY_ONESTOP": self.key,
            "HUB_DATABASE_URL": self.settings.database_url,
            "HUB_BROKER_NAMESPACE": self.settings.broker_namespace,
            "HUB_DEMO_CONSOLE_USER": CONSOLE_USER,
            "HUB_DEMO_CONSOLE_PASSWORD": self.console_password,
        }
        written = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        lines = [
            f"# Written by `hub run --demo` at {written}; valid for that run only. Demo values, not secrets to keep.",
            "# Load it in a shell with:  . var/demo.env   then e.g.  hub trace <MaHoSo>  or the curl below.",
            *(f"export {name}={shlex.quote(value)}" for name, value in values.items()),
            f"# {self.curl()}",
        ]
        return "\n".join(lines) + "\n"

    def curl(self) -> str:
        """A ready-to-paste command that sends one dossier of the person's own to the hub."""
        now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
        code = self.manual_code
        payload = {
            "type": "dossier.upserted",
            "payload": {
                "MaHoSo": code,
                "MaTTHC": "1.001193",
                "TenTTHC": "Đăng ký khai sinh",
                "KenhThucHien": 2,
                "ChuHoSo": "Nguyễn Văn A (dữ liệu mẫu)",
                "LoaiDoiTuong": 1,
                "NgayTiepNhan": f"{now:%Y%m%d%H%M%S}",
                "NgayHenTra": f"{now + timedelta(days=1):%Y%m%d}170000",
                "TrangThaiHoSo": 1,
            },
        }
        body = orjson.dumps(payload).decode()
        return (
            f"curl -s {self.hub_url}/v1/messages -H 'Authorization: Bearer {self.key}' "
            f"-H 'Idempotency-Key: {code}:1' -H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )


def _archive_previous_store(store: Path) -> list[str]:
    """Move the previous run's store (and its WAL files) aside; keep the newest few. Lines to show."""
    if not store.exists():
        return []
    previous = store.parent / "previous"
    previous.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(store.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
    kept = previous / f"hub-{stamp}.db"
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{store}{suffix}")
        if source.exists():
            source.replace(Path(f"{kept}{suffix}"))
    lines = [
        f"The previous demo's store was moved to {kept} (HUB_DATABASE_URL=sqlite+aiosqlite:///{kept.resolve()} "
        "reads it); this run starts with an empty one."
    ]
    older = sorted(previous.glob("hub-*.db"), reverse=True)[KEEP_PREVIOUS_STORES:]
    for old in older:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{old}{suffix}").unlink(missing_ok=True)
    if older:
        lines.append(f"Deleted {len(older)} older demo store(s); the newest {KEEP_PREVIOUS_STORES} are kept.")
    return lines


def prepare_demo(
    settings: HubSettings,
    *,
    dossiers: int,
    rate: float,
    mock_port_base: int = DEFAULT_MOCK_PORT_BASE,
    start_broker: bool = True,
    broker_wait: float = 60.0,
) -> DemoRun:
    """Check the broker, give the run its store, namespace, key and console account, and point the
    route files at the mocks. Raises DemoUnavailableError when no mocks are installed, and
    BrokerUnavailableError (with what to do), before changing anything."""
    systems = load_demo_mocks()
    notes = ensure_broker(settings.broker_url, start=start_broker, wait=broker_wait)
    explicit = settings.model_fields_set
    demo_store = (DEMO_DIR / "hub.db").resolve()
    demo_url = f"sqlite+aiosqlite:///{demo_store}"
    # Demo mode: the route files' sample secrets, URLs from the request's Host, cookies over plain http.
    updates: dict[str, Any] = {"demo": True}
    if "console_secure_cookie" not in explicit:
        updates["console_secure_cookie"] = False
    if "database_url" not in explicit or settings.database_url == demo_url:
        demo_store.parent.mkdir(parents=True, exist_ok=True)
        notes += _archive_previous_store(demo_store)
        updates["database_url"] = demo_url
    else:
        notes.append("The demo uses the store you set in HUB_DATABASE_URL; its dossier codes may repeat earlier runs.")
    if "broker_namespace" not in explicit:
        updates["broker_namespace"] = DEMO_NAMESPACE
    namespace = updates.get("broker_namespace", settings.broker_namespace)
    password = secrets.token_urlsafe(12)
    updates["console_users"] = {
        **settings.console_users,
        CONSOLE_USER: f"operator:{hash_password(password)}",
    }
    key = environment().get("HUB_SYSTEM_KEY_ONESTOP") or "demo-" + secrets.token_urlsafe(24)
    os.environ["HUB_SYSTEM_KEY_ONESTOP"] = key
    mocks = systems.mocks(mock_port_base)
    for mock in mocks:
        os.environ[mock.env] = mock.url + mock.path
    run = DemoRun(
        settings=settings.model_copy(update=updates),
        key=key,
        console_password=password,
        owns_namespace=namespace == DEMO_NAMESPACE or namespace.startswith(f"{DEMO_NAMESPACE}-"),
        notes=notes,
        mocks=mocks,
    )
    run.runner = _mock_runner(run, systems, port_base=mock_port_base, dossiers=dossiers, rate=rate)
    DEMO_ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEMO_ENV_FILE.touch(mode=0o600)
    DEMO_ENV_FILE.chmod(0o600)  # it holds the run's key and console password
    DEMO_ENV_FILE.write_text(run.env_lines(), encoding="utf-8")
    return run


def _mock_runner(run: DemoRun, systems: DemoMocks, *, port_base: int, dossiers: int, rate: float) -> MockRunner:
    async def started() -> None:
        await _wait_ready(f"{run.hub_url}/readyz")
        _say(_welcome(run, run.mocks))

    async def run_mocks(stop: asyncio.Event) -> None:
        await systems.run(
            port_base=port_base,
            hub_url=run.hub_url,
            key=run.key,
            dossiers=dossiers,
            rate=rate,
            environ=environment(),
            stop=stop,
            started=started,
            echo=_say,
        )

    return run_mocks


def _welcome(run: DemoRun, mocks: Sequence[DemoMock]) -> str:
    lines = "\n".join(f"  Mock {mock.name + ':':30} {mock.url}{mock.look}" for mock in mocks)
    notes = "".join(f"  {note}\n" for note in run.notes)
    return (
        f"\nDemo running. / Bản demo đang chạy.\n{lines}\n"
        f"  Hub ingress:                        {run.hub_url}/v1/messages\n"
        f"  System key (this run only):         {run.key}\n"
        f"  Ops console:                        {run.hub_url}/console  "
        f"user {CONSOLE_USER} / password {run.console_password} (role operator)\n"
        f"  Store:                              {run.settings.database_url.split(':///', 1)[-1]}\n"
        f"  Broker namespace:                   {run.settings.broker_namespace}"
        f"{' (its queues are deleted when the demo stops)' if run.owns_namespace else ''}\n"
        f"{notes}"
        f"  All of this is in {DEMO_ENV_FILE}: `. {DEMO_ENV_FILE}` in another terminal, then "
        "`hub trace <MaHoSo>`, `hub dlq list`.\n"
        f"  Send a dossier yourself / Tự gửi một hồ sơ:\n    {run.curl()}\n"
    )


def _say(line: str) -> None:
    """Demo narration for the person at the terminal (not a log line)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


async def _wait_ready(url: str, within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient() as client:
        while asyncio.get_running_loop().time() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
