"""``hub doctor``: check a hub's setup before its first start, or after a change, and say what to fix.

Each check is a small function returning :class:`Check` results (OK, WARN or FAIL, with a sentence),
so each can be tested alone. :func:`run_checks` runs them all in order: settings, route files, system
keys, the admin key, the message store and its migrations, RabbitMQ, and every target (reachability,
the adapter's own check, TLS certificates). The doctor only connects and reads: it declares no queue,
creates no table and sends no message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import httpx
from aio_pika.exceptions import ProbableAuthenticationError
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError, create_model
from pydantic_settings import SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

import hub.store
from hub.adapter import AdapterFactory, DescribesCheck
from hub.adapter_config import SampleSecretError, looks_like_sample, sample_secrets_refused
from hub.bootstrap import adapter_registry, known_schema_names
from hub.errors import ConfigurationError, DeliveryError
from hub.observability import configure_logging
from hub.routing import RouteProblem, RouteTable, TargetSpec, check_routes, resolve_target_config
from hub.settings import HubSettings, env_file, env_file_values
from hub.store import MessageStore

__all__ = [
    "Check",
    "Status",
    "check_admin_key",
    "check_broker",
    "check_certificate",
    "check_database",
    "check_route_files",
    "check_system_keys",
    "check_target",
    "exit_code",
    "key_verdict",
    "load_settings",
    "migration_check",
    "render_json",
    "render_text",
    "run_checks",
    "run_doctor",
]

Status = Literal["OK", "WARN", "FAIL"]

#: A certificate that expires within this many days is a warning.
CERTIFICATE_WARNING_DAYS = 30
#: Keys shorter than this are a warning (``secrets.token_urlsafe(32)`` gives 43 characters).
SHORT_KEY_LENGTH = 16
_DEMO_PREFIX = "demo-"
_NEW_KEY = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'
_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Check:
    """One result: ``name`` says what was checked, ``message`` what was found and, unless OK, what to
    fix; ``message_vi`` is the Vietnamese of what to fix, where there is one."""

    name: str
    status: Status
    message: str
    message_vi: str = ""


# ----------------------------------------------------------------------------- settings


def load_settings() -> tuple[HubSettings | None, list[Check]]:
    """Load the settings; every invalid ``HUB_*`` variable is a FAIL naming it.

    The other checks then run with that setting's default, so one typo does not hide the rest.
    None only when the settings cannot be built at all.
    """
    failing: dict[str, Check] = {}
    for _ in range(len(HubSettings.model_fields) + 1):
        try:
            settings = _settings_without(set(failing))
        except ValidationError as exc:
            found = {
                str(error["loc"][0]): _invalid_setting(str(error["loc"][0]), error["msg"], error.get("input"))
                for error in exc.errors()
                if error["loc"] and str(error["loc"][0]) in HubSettings.model_fields
            }
            if not found or set(found) <= set(failing):
                return None, [*failing.values(), _settings_unusable(str(exc))]
            failing.update(found)
        except SettingsError as exc:
            match = re.search(r'field "([^"]+)"', str(exc))
            field = match.group(1) if match else ""
            if field not in HubSettings.model_fields or field in failing:
                return None, [*failing.values(), _settings_unusable(str(exc))]
            variable = f"HUB_{field.upper()}"
            failing[field] = Check(
                "settings",
                "FAIL",
                f"{variable} cannot be read ({exc}): it must be JSON, e.g. {variable}='{{}}'. "
                "Fix it in the environment or in .env.",
                f"Không đọc được {variable}: giá trị phải là JSON; sửa trong biến môi trường hoặc file .env.",
            )
        else:
            if failing:
                return settings, list(failing.values())
            source = " and ./.env" if env_file().is_file() else ""
            return settings, [Check("settings", "OK", f"The HUB_* settings load from the environment{source}.")]
    return None, [*failing.values(), _settings_unusable("too many invalid settings")]


def _settings_without(fields: set[str]) -> HubSettings:
    """HubSettings with ``fields`` at their defaults, whatever the environment says about them."""
    if not fields:
        return HubSettings()
    defaults = {name: HubSettings.model_fields[name].get_default(call_default_factory=True) for name in fields}
    # A field typed Any is read as a plain string (no JSON parsing), and the init value overrides it.
    lenient = create_model(  # type: ignore[call-overload]
        "DoctorSettings", __base__=HubSettings, **{name: (Any, value) for name, value in defaults.items()}
    )
    settings: HubSettings = lenient(**defaults)
    return settings


def _invalid_setting(field: str, problem: str, value: object) -> Check:
    variable = f"HUB_{field.upper()}"
    secret = "SecretStr" in repr(HubSettings.model_fields[field].annotation)
    shown = "" if secret or value is None else f"={value!r}"
    return Check(
        "settings",
        "FAIL",
        f"{variable}{shown} is not valid: {problem}. Fix it in the environment or in .env "
        f"(docs/configuration.md describes it); the other checks use its default.",
        f"{variable} không hợp lệ: sửa trong biến môi trường hoặc file .env (xem docs/configuration.md).",
    )


def _settings_unusable(detail: str) -> Check:
    first = detail.splitlines()[0] if detail else detail
    return Check(
        "settings",
        "FAIL",
        f"The settings cannot be loaded ({first}); fix the HUB_* variables above. The other checks need them "
        "and did not run.",
        "Không nạp được cấu hình: sửa các biến HUB_* ở trên; các mục kiểm tra khác chưa chạy.",
    )


# ----------------------------------------------------------------------------- routes and keys


def check_route_files(
    folder: Path, *, known_schemas: Iterable[str], known_adapters: Iterable[str]
) -> tuple[RouteTable | None, list[Check]]:
    """Check the route files as ``hub routes check`` does: every error a FAIL, every warning a WARN.

    When some files have errors, the table of the other files is returned, so the key and target
    checks still run for them. Warnings about system keys are left to :func:`check_system_keys`.
    """
    if not folder.is_dir():
        return None, [
            Check(
                "routes",
                "FAIL",
                f"The routes folder {folder} does not exist. Set HUB_ROUTES_DIR to the folder of the route files "
                "(*.yaml), or run the hub from the folder that holds routes/.",
                f"Không có thư mục tuyến {folder}: đặt HUB_ROUTES_DIR trỏ tới thư mục chứa các file tuyến (*.yaml).",
            )
        ]
    schemas, adapters = list(known_schemas), list(known_adapters)
    paths = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    table, problems = check_routes(paths, known_schemas=schemas, known_adapters=adapters)
    reported = problems
    good = paths
    while table is None and good:  # leave out the files with errors, so the other files are still checked
        bad = {p.file for p in problems if p.severity == "error"}
        kept = [p for p in good if str(p) not in bad]
        if kept == good:
            break
        good = kept
        table, problems = check_routes(good, known_schemas=schemas, known_adapters=adapters) if good else (None, [])
    key_envs = {s.key_env for s in table.systems.values()} if table is not None else set()
    left_out = {str(p) for p in paths} - {str(p) for p in good} if table is not None else set()
    checks = [
        _route_problem(p, left_out=p.file in left_out)
        for p in reported
        if p.severity == "error" or not _names_any(p, key_envs)
    ]
    if table is not None and not any(c.status == "FAIL" for c in checks):
        checks.append(
            Check(
                "routes",
                "OK",
                f"{len(paths)} file(s) in {folder}: {len(table.systems)} system(s), {len(table.targets)} target(s), "
                f"{len(table.routes)} route(s).",
            )
        )
    return table, checks


def _names_any(problem: RouteProblem, names: set[str]) -> bool:
    return any(name in problem.message for name in names)


def _route_problem(problem: RouteProblem, *, left_out: bool) -> Check:
    if problem.severity == "error":
        rest = " The key and target checks below leave this file out." if left_out else ""
        return Check(
            "routes",
            "FAIL",
            f"{problem}{rest}",
            "Lỗi trong file tuyến: sửa dòng được nêu (`hub routes check` cũng liệt kê) rồi chạy lại.",
        )
    return Check("routes", "WARN", str(problem))


def key_verdict(value: str | None) -> tuple[Status, str]:
    """Judge a key's value: FAIL for none, an empty one or a sample; WARN for a demo key or a short one.

    The reason is a phrase that never repeats the key.
    """
    if value is None:
        return "FAIL", "is not set"
    if not value.strip():
        return "FAIL", "is set but empty"
    lowered = value.strip().lower()
    if looks_like_sample(value):
        return "FAIL", "holds a sample value (as in .env.example), which anyone who reads the repository knows"
    if lowered.startswith(_DEMO_PREFIX):
        return "WARN", "holds a demo key (it starts with 'demo-'); a production hub should have a key of its own"
    if len(value) < SHORT_KEY_LENGTH:
        return "WARN", f"is only {len(value)} characters long, short enough to guess"
    return "OK", f"is set ({len(value)} characters)"


def check_system_keys(
    table: RouteTable, environ: Mapping[str, str], env_file: Mapping[str, str], *, env_file_name: str = ".env"
) -> list[Check]:
    """Every sending system's key (``key_env``): set, and not a sample, a demo key or a short one."""
    checks: list[Check] = []
    for system in table.systems.values():
        name = f"key {system.key_env}"
        in_environment = system.key_env in environ
        value = environ.get(system.key_env, env_file.get(system.key_env))
        status, reason = key_verdict(value)
        if status == "OK":
            where = "" if in_environment else f" in {env_file_name}"
            checks.append(Check(name, "OK", f"System '{system.id}': {system.key_env} {reason}{where}."))
            continue
        consequence = " so the ingress refuses its messages" if value is None or not value.strip() else ""
        checks.append(
            Check(
                name,
                status,
                f"System '{system.id}': {system.key_env} {reason}{',' if consequence else ''}{consequence}. Set it "
                f"to a random key ({_NEW_KEY}) and give the same key to the system.",
                f"Hệ thống '{system.id}': khóa {system.key_env} chưa đúng; đặt một khóa ngẫu nhiên "
                "(ít nhất 32 ký tự) và trao cùng khóa đó cho hệ thống gửi.",
            )
        )
    return checks


def check_admin_key(settings: HubSettings) -> Check:
    """HUB_ADMIN_KEY: unset is a choice (OK, said so); set, it is judged like a system key."""
    value = settings.admin_key.get_secret_value() if settings.admin_key is not None else ""
    if not value:
        return Check(
            "admin key",
            "OK",
            "HUB_ADMIN_KEY is not set: no key reads every message or replays over the API (the console "
            "and the `hub` commands still do). Set one if ops tools need that.",
        )
    status, reason = key_verdict(value)
    if status == "OK":
        return Check("admin key", "OK", f"HUB_ADMIN_KEY {reason}.")
    return Check(
        "admin key",
        status,
        f"HUB_ADMIN_KEY {reason}. It reads every message, so set a random key ({_NEW_KEY}) or leave it unset.",
        "HUB_ADMIN_KEY chưa an toàn: đặt một khóa ngẫu nhiên (ít nhất 32 ký tự) hoặc để trống.",
    )


# ----------------------------------------------------------------------------- the message store


async def check_database(url: str, timeout: float) -> list[Check]:
    """Connect to the message store and compare its Alembic revision with this hub's newest."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return [
            Check(
                "database",
                "FAIL",
                "HUB_DATABASE_URL is not a database URL; use e.g. sqlite+aiosqlite:///./var/hub.db or "
                "postgresql+psycopg://hub:PASSWORD@db-host/hub.",
                "HUB_DATABASE_URL không phải địa chỉ cơ sở dữ liệu hợp lệ.",
            )
        ]
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        missing = _missing_sqlite_file(Path(parsed.database))
        if missing is not None:
            return [missing]
    try:
        store = MessageStore.open(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        return [
            Check(
                "database",
                "FAIL",
                f"HUB_DATABASE_URL ({shown}) cannot be used ({type(exc).__name__}: {_first_line(exc)}); "
                "use sqlite+aiosqlite:///… or postgresql+psycopg://….",
                "HUB_DATABASE_URL không dùng được: sửa lại địa chỉ cơ sở dữ liệu.",
            )
        ]
    try:
        async with asyncio.timeout(timeout), store.engine.connect() as connection:
            current = await connection.run_sync(_current_revisions)
    except TimeoutError:
        return [
            Check(
                "database",
                "FAIL",
                f"The message store at {shown} did not answer within {timeout:g}s. Check that the database "
                "runs, and that HUB_DATABASE_URL's host and port are right and reachable from here.",
                "Cơ sở dữ liệu không trả lời: kiểm tra máy chủ cơ sở dữ liệu và HUB_DATABASE_URL.",
            )
        ]
    except (SQLAlchemyError, OSError) as exc:
        return [
            Check(
                "database",
                "FAIL",
                f"Cannot connect to the message store at {shown} ({type(exc).__name__}: {_first_line(exc)}). "
                "Check that the database runs and that HUB_DATABASE_URL (host, database, user, password) is right.",
                "Không kết nối được cơ sở dữ liệu: kiểm tra máy chủ cơ sở dữ liệu và HUB_DATABASE_URL.",
            )
        ]
    finally:
        await store.aclose()
    heads, known = _script_revisions()
    return [Check("database", "OK", f"Connected to {shown}."), migration_check(current, heads, known)]


def _missing_sqlite_file(file: Path) -> Check | None:
    """None when the SQLite file exists; else whether the hub can create it (the doctor creates nothing)."""
    if file.exists():
        return None
    folder = file.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
        return Check(
            "database",
            "WARN",
            f"The SQLite store {file} does not exist yet. Run `hub db upgrade` to create it (the hub also "
            "creates it when it starts).",
            f"Chưa có file SQLite {file}: chạy `hub db upgrade` để tạo.",
        )
    why = "is not a folder" if folder.exists() and not folder.is_dir() else "is not writable"
    return Check(
        "database",
        "FAIL",
        f"The SQLite store {file} cannot be created: {folder} {why}. Point HUB_DATABASE_URL "
        "(sqlite+aiosqlite:///PATH) into a folder the hub may write, or create that folder.",
        f"Không tạo được file SQLite {file}: sửa HUB_DATABASE_URL trỏ tới thư mục mà hub được ghi.",
    )


def _current_revisions(connection: Any) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def _script_revisions() -> tuple[set[str], set[str]]:
    """This hub's newest revisions (heads) and every revision it knows."""
    script = ScriptDirectory.from_config(Config(str(Path(hub.store.__file__).with_name("alembic.ini"))))
    return set(script.get_heads()), {revision.revision for revision in script.walk_revisions()}


def migration_check(current: set[str], heads: set[str], known: set[str]) -> Check:
    """The store's revision against this hub's: current (OK), empty or behind (WARN), unknown (FAIL)."""
    newest = ", ".join(sorted(heads))
    if current == heads:
        return Check("migrations", "OK", f"The store's tables are at the newest revision ({newest}).")
    unknown = current - known
    if unknown:
        return Check(
            "migrations",
            "FAIL",
            f"The store is at revision {', '.join(sorted(unknown))}, which this hub does not know (its newest is "
            f"{newest}): a newer hub has migrated it. Run that newer version, or restore the backup taken before "
            "its upgrade.",
            "Cơ sở dữ liệu đã được nâng cấp bởi phiên bản hub mới hơn: "
            "chạy phiên bản mới đó hoặc khôi phục bản sao lưu.",
        )
    if not current:
        return Check(
            "migrations",
            "WARN",
            f"The store has no tables yet. Run `hub db upgrade` (to revision {newest}); the hub also does "
            "when it starts.",
            "Cơ sở dữ liệu chưa có bảng: chạy `hub db upgrade`.",
        )
    return Check(
        "migrations",
        "WARN",
        f"The store is at revision {', '.join(sorted(current))}, behind this hub's {newest}. Back it up, then "
        "run `hub db upgrade` (the hub also migrates when it starts).",
        "Cơ sở dữ liệu chưa ở phiên bản mới nhất: sao lưu rồi chạy `hub db upgrade`.",
    )


# ----------------------------------------------------------------------------- RabbitMQ


async def check_broker(url: str, timeout: float) -> Check:
    """Open one plain AMQP connection (no reconnecting, nothing declared) and read RabbitMQ's version."""
    shown = _hide_password(url)
    try:
        async with asyncio.timeout(timeout + 1):
            connection = await aio_pika.connect(
                url, timeout=timeout, client_properties={"connection_name": "lgsp-hub doctor"}
            )
    except TimeoutError:
        return Check(
            "broker",
            "FAIL",
            f"RabbitMQ at {shown} did not answer within {timeout:g}s. Check that it runs, that HUB_BROKER_URL's "
            "host and port are right, and that no firewall drops the traffic.",
            "RabbitMQ không trả lời: kiểm tra RabbitMQ đang chạy và HUB_BROKER_URL đúng máy, đúng cổng.",
        )
    except ProbableAuthenticationError:
        return Check(
            "broker",
            "FAIL",
            f"RabbitMQ at {shown} refused the user name or password of HUB_BROKER_URL. Fix them "
            "(`rabbitmqctl list_users` lists the users).",
            "RabbitMQ từ chối tên đăng nhập hoặc mật khẩu trong HUB_BROKER_URL: sửa lại.",
        )
    except Exception as exc:  # noqa: BLE001 - any failure to connect is this check's finding, as a sentence
        return Check(
            "broker",
            "FAIL",
            f"Cannot connect to RabbitMQ at {shown} ({type(exc).__name__}: {_first_line(exc)}). Start RabbitMQ, "
            "or fix HUB_BROKER_URL (amqp://USER:PASSWORD@HOST:5672/VHOST).",
            "Không kết nối được RabbitMQ: khởi động RabbitMQ hoặc sửa HUB_BROKER_URL.",
        )
    try:
        version = _server_version(connection)
    finally:
        await connection.close()
    return Check("broker", "OK", f"Connected to RabbitMQ{' ' + version if version else ''} at {shown}.")


def _server_version(connection: Any) -> str:
    transport = getattr(connection, "transport", None)
    properties = getattr(getattr(transport, "connection", None), "server_properties", None) or {}
    version = properties.get("version") if isinstance(properties, dict) else None
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return str(version) if version else ""


# ----------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class _Endpoint:
    key: str  # config key that holds the URL
    scheme: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


async def check_target(
    target: TargetSpec, factory: AdapterFactory, timeout: float, *, refuse_sample_secrets: bool = True
) -> list[Check]:
    """Reach every http(s) address in the target's config, run the adapter's own ``check()`` (a token
    fetch where the target has one) and read the TLS certificate of every https address.

    A sample secret is a FAIL, with the sentence the hub stops with, unless ``refuse_sample_secrets`` is
    false (HUB_ALLOW_SAMPLE_SECRETS): then, like any other sample value in the config, a WARN."""
    name = f"target {target.id}"
    try:
        config = resolve_target_config(target)
    except ConfigurationError as exc:
        return [Check(name, "FAIL", str(exc), f"Đích {target.id} thiếu biến môi trường: đặt các biến được nêu.")]
    checks: list[Check] = []
    if refuse_sample_secrets and (refusal := await _sample_secret_refusal(target, factory, config)) is not None:
        checks.append(
            Check(
                f"config {target.id}",
                "FAIL",
                refusal,
                f"Đích {target.id} đang dùng khoá bí mật mẫu: hub sẽ không khởi động; đặt giá trị thật.",
            )
        )
    samples = sorted(key for key, value in config.items() if isinstance(value, str) and _looks_like_sample(value))
    if samples and not checks:
        variables = sorted({v for key in samples for v in _ENV_REF.findall(str(target.config.get(key, "")))})
        where = f" (set {', '.join(variables)})" if variables else ""
        checks.append(
            Check(
                f"config {target.id}",
                "WARN",
                f"Target '{target.id}' uses sample values for {', '.join(samples)}: fine against the mocks, never "
                f"against the real system. Set the values its operator issued{where}.",
                f"Đích {target.id} đang dùng giá trị mẫu cho {', '.join(samples)}: "
                "đặt giá trị thật trước khi vận hành.",
            )
        )
    endpoints = _endpoints(config)
    unreachable: list[str] = []
    for endpoint in endpoints:
        problem = await _tcp_reach(endpoint, timeout)
        if problem is not None:
            unreachable.append(f"{endpoint.address} ({endpoint.key}{_variable_of(target, endpoint.key)}: {problem})")
    if unreachable:
        checks.append(
            Check(
                name,
                "FAIL",
                f"Cannot reach {'; '.join(unreachable)} within {timeout:g}s. Check that the system is up, that the "
                "address in the route file (or its variable) is right, and the network route and firewall from "
                "the hub.",
                f"Không kết nối được tới đích {target.id}: "
                "kiểm tra hệ thống đích, địa chỉ trong file tuyến và tường lửa.",
            )
        )
    else:
        checks.append(await _adapter_check(target, factory, config, endpoints, timeout))
    reached = {e.address for e in endpoints} - {u.split(" ", 1)[0] for u in unreachable}
    seen: set[str] = set()
    for endpoint in endpoints:
        if endpoint.scheme == "https" and endpoint.address in reached and endpoint.address not in seen:
            seen.add(endpoint.address)
            checks.append(await asyncio.to_thread(check_certificate, target.id, endpoint.host, endpoint.port, timeout))
    return checks


async def _adapter_check(
    target: TargetSpec, factory: AdapterFactory, config: dict[str, Any], endpoints: list[_Endpoint], timeout: float
) -> Check:
    name = f"target {target.id}"
    addresses = ", ".join(sorted({e.address for e in endpoints}))
    lead = f"Reachable at {addresses}, but its" if endpoints else "Its"
    try:
        adapter = factory(target.id, config)
    except ConfigurationError as exc:
        return Check(name, "FAIL", str(exc), f"Cấu hình của đích {target.id} chưa đúng: sửa theo thông báo.")
    check = getattr(adapter, "check", None)
    try:
        if callable(check):
            async with asyncio.timeout(timeout):
                await check()
    except TimeoutError:
        return Check(
            name,
            "FAIL",
            f"{lead} check did not finish within {timeout:g}s. Check how fast the system answers "
            "(or run `hub doctor --timeout 20`).",
            f"Đích {target.id} trả lời quá chậm: kiểm tra hệ thống đích.",
        )
    except DeliveryError as exc:
        return Check(
            name,
            "FAIL",
            f"{lead} check failed: {exc}",
            f"Đích {target.id} không đạt kiểm tra: xem lý do (tiếng Anh) ở trên, sửa địa chỉ hoặc thông tin đăng nhập.",
        )
    except Exception as exc:  # noqa: BLE001 - an adapter bug is reported as this target's finding
        return Check(
            name,
            "FAIL",
            f"{lead} check raised {type(exc).__name__}: {_first_line(exc)}. Report this to the hub "
            "maintainers with this line.",
        )
    finally:
        close = getattr(adapter, "aclose", None)
        if callable(close):
            await close()
    proved = "no check"
    if callable(check):
        proved = adapter.check_description if isinstance(adapter, DescribesCheck) else "its adapter's check passed"
    where = f"Reachable at {addresses}" if endpoints else "No address in its config"
    return Check(name, "OK", f"{where}; {proved}.")


def _endpoints(config: Mapping[str, Any]) -> list[_Endpoint]:
    """Every http(s) address among the config's top-level values, in order."""
    found: list[_Endpoint] = []
    for key, value in config.items():
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            continue
        parts = urlsplit(value)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            continue
        if parts.hostname:
            found.append(_Endpoint(key, parts.scheme, parts.hostname, port))
    return found


async def _tcp_reach(endpoint: _Endpoint, timeout: float) -> str | None:
    """None when a TCP connection opens within ``timeout``, else why not."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    except TimeoutError:
        return "no answer"
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror:
        return "unknown host name"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


def _variable_of(target: TargetSpec, key: str) -> str:
    found = _ENV_REF.findall(str(target.config.get(key, "")))
    return f", from {found[0]}" if found else ""


def _looks_like_sample(value: str) -> bool:
    return bool(value.strip()) and looks_like_sample(value)


async def _sample_secret_refusal(target: TargetSpec, factory: AdapterFactory, config: dict[str, Any]) -> str | None:
    """The sentence the hub stops with when the target's secrets hold a sample (built as the hub builds it)."""
    variables = {key: found[0] for key, value in target.config.items() if (found := _ENV_REF.findall(str(value)))}
    try:
        with sample_secrets_refused(variables=variables):
            adapter = factory(target.id, config)
    except SampleSecretError as exc:
        return str(exc)
    except ConfigurationError:
        return None  # reported by the adapter's check below
    close = getattr(adapter, "aclose", None)
    if callable(close):
        await close()
    return None


# ----------------------------------------------------------------------------- TLS certificates


def check_certificate(target_id: str, host: str, port: int, timeout: float, *, now: datetime | None = None) -> Check:
    """Read the certificate ``host:port`` presents: FAIL when expired or not trusted (the hub's HTTPS
    calls would fail), WARN when it expires within 30 days. Blocking: run it in a thread."""
    name = f"certificate {target_id}"
    address = f"{host}:{port}"
    try:
        der, untrusted = _peer_certificate(host, port, timeout)
        not_after = certificate_not_after(der)
    except (OSError, ValueError) as exc:
        return Check(
            name,
            "FAIL",
            f"No TLS handshake with {address} within {timeout:g}s ({type(exc).__name__}: {_first_line(exc)}). "
            "Check that the address serves HTTPS on that port.",
            f"Không bắt tay TLS được với {address}: kiểm tra địa chỉ HTTPS của đích {target_id}.",
        )
    left = not_after - (now or datetime.now(UTC))
    day = f"{not_after:%Y-%m-%d}"
    if left <= timedelta(0):
        return Check(
            name,
            "FAIL",
            f"The certificate of {address} expired on {day} ({(-left).days} day(s) ago), so the hub's calls to it "
            f"fail. Ask the operator of '{target_id}' to renew it.",
            f"Chứng chỉ TLS của {address} đã hết hạn ngày {day}: đề nghị đơn vị vận hành '{target_id}' gia hạn.",
        )
    if untrusted is not None:
        return Check(
            name,
            "FAIL",
            f"The certificate of {address} is not trusted ({untrusted}), so the hub's calls to it fail. Ask for a "
            "certificate from a trusted CA, or add the issuing CA to the hub's trust store (SSL_CERT_FILE).",
            f"Chứng chỉ TLS của {address} không được tin cậy: "
            "bổ sung CA phát hành vào SSL_CERT_FILE hoặc thay chứng chỉ.",
        )
    if left < timedelta(days=CERTIFICATE_WARNING_DAYS):
        return Check(
            name,
            "WARN",
            f"The certificate of {address} expires on {day}, in {left.days} day(s). Ask the operator of "
            f"'{target_id}' to renew it before then.",
            f"Chứng chỉ TLS của {address} hết hạn ngày {day}: đề nghị gia hạn sớm.",
        )
    return Check(name, "OK", f"The certificate of {address} is trusted and valid until {day} ({left.days} days).")


def _peer_certificate(host: str, port: int, timeout: float) -> tuple[bytes, str | None]:
    """The DER certificate ``host:port`` presents, and why it does not verify (None when it does).

    Verified with the trust the adapters' HTTP clients use (httpx: certifi, or SSL_CERT_FILE).
    """
    untrusted: str | None = None
    trusted = httpx.create_ssl_context()
    try:
        return _handshake(trusted, host, port, timeout), None
    except ssl.SSLCertVerificationError as exc:
        untrusted = exc.verify_message or _first_line(exc)
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # only to read the dates of a certificate that did not verify
    return _handshake(unverified, host, port, timeout), untrusted


def _handshake(context: ssl.SSLContext, host: str, port: int, timeout: float) -> bytes:
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ValueError("the server sent no certificate")
    return der


def certificate_not_after(der: bytes) -> datetime:
    """``notAfter`` of a DER X.509 certificate (Certificate → TBSCertificate → validity), in UTC."""

    def element(offset: int) -> tuple[int, int, int]:  # tag, start of content, end of content
        if offset + 2 > len(der):
            raise ValueError("truncated certificate")
        tag, length = der[offset], der[offset + 1]
        offset += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[offset : offset + count], "big")
            offset += count
        return tag, offset, offset + length

    _, certificate, _ = element(0)
    _, field, _ = element(certificate)  # the TBSCertificate's first field
    tag, _, end = element(field)
    if tag == 0xA0:  # [0] version
        field = end
    for _ in range(3):  # serialNumber, signature, issuer
        field = element(field)[2]
    _, validity, _ = element(field)
    not_before_end = element(validity)[2]
    tag, start, end = element(not_before_end)
    text = der[start:end].decode("ascii")
    layout = {0x17: "%y%m%d%H%M%SZ", 0x18: "%Y%m%d%H%M%SZ"}.get(tag)
    if layout is None:
        raise ValueError(f"unexpected time tag {tag:#x} in the certificate")
    return datetime.strptime(text, layout).replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- all together


async def run_checks(timeout: float = 5.0, *, environ: Mapping[str, str] | None = None) -> list[Check]:
    """Every check, in order; a check that needs something an earlier one found broken does not run."""
    environ = os.environ if environ is None else environ
    settings, checks = load_settings()
    if settings is None:
        return checks
    adapters = adapter_registry()
    table, found = check_route_files(settings.routes_dir, known_schemas=known_schema_names(), known_adapters=adapters)
    checks += found
    if table is not None:
        checks += check_system_keys(table, environ, env_file_values(), env_file_name=str(env_file()))
    checks.append(check_admin_key(settings))
    checks += await check_database(settings.database_url, timeout)
    checks.append(await check_broker(settings.broker_url, timeout))
    if table is not None:
        for target in table.targets.values():
            factory = adapters.get(target.adapter)
            if factory is not None:
                refuse = not (settings.demo or settings.allow_sample_secrets)
                checks += await check_target(target, factory, timeout, refuse_sample_secrets=refuse)
    return checks


def exit_code(checks: Iterable[Check]) -> int:
    """0 when nothing failed, 1 when something must be fixed."""
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def _summary(checks: list[Check]) -> tuple[str, str]:
    problems = sum(c.status == "FAIL" for c in checks)
    warnings = sum(c.status == "WARN" for c in checks)
    if problems:
        english = f"{problems} problem(s) to fix"
        vietnamese = f"{problems} vấn đề cần sửa"
    else:
        english = f"No problem found in {len(checks)} check(s)"
        vietnamese = f"Không có vấn đề nào trong {len(checks)} mục kiểm tra"
    if warnings:
        english += f", {warnings} warning(s)"
        vietnamese += f", {warnings} cảnh báo"
    return english, vietnamese


def render_text(checks: list[Check]) -> str:
    """One line per check (status, name, sentence); the Vietnamese of a fix indented under it; the summary."""
    width = max((len(c.name) for c in checks), default=0)
    lines: list[str] = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.message}")
        if c.status != "OK" and c.message_vi:
            lines.append(f"{'':<4}  {'':<{width}}  ↳ {c.message_vi}")
    english, vietnamese = _summary(checks)
    lines.append(f"{english} / {vietnamese}.")
    return "\n".join(lines)


def render_json(checks: list[Check]) -> str:
    english, vietnamese = _summary(checks)
    document = {
        "ok": exit_code(checks) == 0,
        "problems": sum(c.status == "FAIL" for c in checks),
        "warnings": sum(c.status == "WARN" for c in checks),
        "summary": english,
        "summary_vi": vietnamese,
        "checks": [asdict(c) for c in checks],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def run_doctor(*, as_json: bool, timeout: float, echo: Callable[[str], object]) -> int:
    """What ``hub doctor`` does: run every check, print the results, return the exit code."""
    configure_logging("WARNING", "console")  # adapters' log lines go to stderr, and only warnings
    checks = asyncio.run(run_checks(timeout))
    echo(render_json(checks) if as_json else render_text(checks))
    return exit_code(checks)


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
