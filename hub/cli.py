"""The ``hub`` command: run the roles, check routes, look at and replay dead letters.

Everything here is a thin layer over :mod:`hub.runner` and :mod:`hub.services`.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from hub.audit_cli import audit_app
from hub.bootstrap import Hub, adapter_registry, build_hub, known_schema_names, load_plugins, open_hub, schema_registry
from hub.console.cli import console_app
from hub.demo import DemoUnavailableError, delete_demo_queues, prepare_demo
from hub.errors import BrokerUnavailableError, ConfigurationError, HubError, StoreUnavailableError
from hub.observability import configure_logging
from hub.routing import check_routes
from hub.runner import run_hub
from hub.services import replay_message, replay_target
from hub.settings import HubSettings
from hub.store import MessageStore

if sys.platform != "win32":  # pyproject.toml installs uvloop everywhere else
    import uvloop

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(help="LGSP hub: the provincial integration hub.", no_args_is_help=True, add_completion=False)
routes_app = typer.Typer(help="Routing tables.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queues.", no_args_is_help=True)
db_app = typer.Typer(help="The message store.", no_args_is_help=True)
schemas_app = typer.Typer(help="Canonical message schemas.", no_args_is_help=True)
config_app = typer.Typer(help="Settings.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")
app.add_typer(dlq_app, name="dlq")
app.add_typer(db_app, name="db")
app.add_typer(schemas_app, name="schemas")
app.add_typer(config_app, name="config")
# --- feature command groups: each feature adds one `app.add_typer(...)` line below -------------
app.add_typer(audit_app, name="audit")  # audit trail of identity lookups and logins (docs/identity.md)
app.add_typer(console_app, name="console")  # the ops console's logins (docs/console.md)
# -----------------------------------------------------------------------------------------------


def _add_plugin_commands() -> str | None:
    """The ``hub <name>`` groups of every installed plugin; the sentence to say when one cannot load."""
    try:
        plugins = load_plugins()
    except ConfigurationError as exc:
        return str(exc)
    for plugin in plugins:
        if plugin.commands is not None:
            for name, group in plugin.commands(open_hub).items():
                app.add_typer(group, name=name)
    return None


_PLUGIN_PROBLEM = _add_plugin_commands()


def _fail(message: str, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _hub(settings: HubSettings | None = None) -> Hub:
    settings = settings or HubSettings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        return build_hub(settings)
    except ConfigurationError as exc:
        _fail(str(exc), 2)
        raise  # unreachable: _fail exits


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            return runner.run(coro)
    except (BrokerUnavailableError, StoreUnavailableError, ConfigurationError) as exc:
        _fail(str(exc), 3)
        raise
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop, except on Windows (which it does not support): the hub's processes spend much of their
    time in the event loop, and uvloop runs it faster."""
    if sys.platform == "win32":
        return None
    return uvloop.new_event_loop


async def _with_hub(hub: Hub, action: Callable[[Hub], Awaitable[T]]) -> T:
    try:
        await hub.store.migrate()
        return await action(hub)
    finally:
        await hub.aclose()


def _actor() -> str:
    return os.environ.get("HUB_OPERATOR") or f"cli:{getpass.getuser()}"


# ---------------------------------------------------------------------------- roles


@app.command()
def run(
    demo: Annotated[bool, typer.Option(help="Also start the mock national portal and a mock one-stop system.")] = False,
    host: Annotated[str | None, typer.Option(help="Address of the ingress API.")] = None,
    port: Annotated[int | None, typer.Option(help="Port of the ingress API.")] = None,
    dossiers: Annotated[int, typer.Option(help="Demo: dossiers the mock one-stop system sends (0 = forever).")] = 0,
    rate: Annotated[float, typer.Option(help="Demo: messages per second from the mock one-stop system.")] = 2.0,
    mock_port_base: Annotated[
        int, typer.Option(help="Demo: the mocks listen on the next six ports (portal on +1 … VNeID on +6).")
    ] = 8080,
    start_broker: Annotated[
        bool,
        typer.Option(help="Demo: start this machine's RabbitMQ when it is installed but stopped (as root only)."),
    ] = True,
    broker_wait: Annotated[
        float, typer.Option(help="Demo: seconds to wait for a RabbitMQ the demo started to answer.")
    ] = 60.0,
) -> None:
    """Run every role in one process: the ingress and a worker for every target (first install, demo)."""
    overrides: dict[str, Any] = {}
    if host:
        overrides["http_host"] = host
    if port:
        overrides["http_port"] = port
    settings = HubSettings(**overrides)
    demo_run = None
    if demo:
        configure_logging(settings.log_level, settings.log_format)
        try:
            demo_run = prepare_demo(
                settings,
                dossiers=dossiers,
                rate=rate,
                mock_port_base=mock_port_base,
                start_broker=start_broker,
                broker_wait=broker_wait,
            )
        except DemoUnavailableError as exc:
            _fail(str(exc), 2)
            raise
        except BrokerUnavailableError as exc:
            _fail(str(exc), 3)
            raise
        settings = demo_run.settings
    hub = _hub(settings)
    typer.echo(f"Ingress API:   http://{settings.http_host}:{settings.http_port}/v1/messages", err=True)
    typer.echo(f"API contract:  http://{settings.http_host}:{settings.http_port}/docs", err=True)
    typer.echo(f"Metrics:       http://{settings.http_host}:{settings.http_port}/metrics", err=True)
    typer.echo(f"Ops console:   http://{settings.http_host}:{settings.http_port}/console", err=True)
    if demo_run is None:
        _run(run_hub(hub, ingress=True, targets=list(hub.routes.targets)))
        return
    if demo_run.owns_namespace:  # what a previous demo left in its queues belongs to its archived store
        _run(delete_demo_queues(settings.broker_url, hub.broker.topology, hub.routes))
    try:
        _run(run_hub(hub, ingress=True, targets=list(hub.routes.targets), extra=demo_run.runner))
    finally:
        if demo_run.owns_namespace:
            _run(delete_demo_queues(settings.broker_url, hub.broker.topology, hub.routes))


@app.command()
def ingress(
    host: Annotated[str | None, typer.Option(help="Address of the ingress API (default: HUB_HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port of the ingress API (default: HUB_HTTP_PORT).")] = None,
) -> None:
    """Run the ingress API alone (production: several behind a load balancer)."""
    overrides: dict[str, Any] = {}
    if host:
        overrides["http_host"] = host
    if port:
        overrides["http_port"] = port
    hub = _hub(HubSettings(**overrides))
    _run(run_hub(hub, ingress=True, targets=[]))


@app.command()
def worker(
    target: Annotated[list[str], typer.Option("--target", "-t", help="Target id (repeatable).")],
    metrics_port: Annotated[int | None, typer.Option(help="Serve /metrics of this worker on this port.")] = None,
) -> None:
    """Run the delivery worker of one or more targets (production: several processes per target)."""
    hub = _hub()
    unknown = [t for t in target if t not in hub.routes.targets]
    if unknown:
        _fail(
            f"Unknown target(s) {', '.join(unknown)}; the route files declare: {', '.join(hub.routes.targets)}.",
            2,
        )
    _run(run_hub(hub, ingress=False, targets=target, metrics_port=metrics_port))


# ---------------------------------------------------------------------------- routes


@routes_app.command("check")
def routes_check(
    directory: Annotated[Path | None, typer.Option("--dir", help="Folder of route files.")] = None,
) -> None:
    """Check every route file; print each problem with its file and line. Exit 1 on errors."""
    folder = directory or HubSettings().routes_dir
    paths = [*folder.glob("*.yaml"), *folder.glob("*.yml")] if folder.is_dir() else []
    if not folder.is_dir():
        _fail(f"{folder}: error: the routes folder does not exist; pass --dir or set HUB_ROUTES_DIR.", 1)
    table, problems = check_routes(paths, known_schemas=known_schema_names(), known_adapters=adapter_registry())
    for problem in problems:
        typer.echo(str(problem))
    if table is None:
        errors = sum(p.severity == "error" for p in problems)
        _fail(f"{errors} error(s) in {len(paths)} route file(s).", 1)
        return
    typer.echo(
        f"OK: {len(paths)} file(s), {len(table.systems)} system(s), {len(table.targets)} target(s), "
        f"{len(table.routes)} route(s)."
    )


# ---------------------------------------------------------------------------- ops


@dlq_app.command("list")
def dlq_list(
    target: Annotated[str | None, typer.Option(help="Only this target.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many messages, the oldest first.")] = 200,
) -> None:
    """List dead-lettered messages with their reasons (payloads are not printed: they hold personal data).

    An empty list is not an error: the command exits 0 when no message is dead-lettered.
    """

    async def action(hub: Hub) -> None:
        rows = await hub.store.dead_letters(target, limit=limit)
        for envelope, delivery in rows:
            if as_json:
                typer.echo(
                    json.dumps(
                        {
                            "id": envelope.id,
                            "target": delivery.target,
                            "type": envelope.type,
                            "dossier_code": envelope.dossier_code,
                            "attempts": delivery.attempts,
                            "reason": delivery.last_error,
                            "at": delivery.updated_at.isoformat(),
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                typer.echo(
                    f"{envelope.id}  {delivery.target}  {envelope.type}  {envelope.dossier_code or '-'}  "
                    f"attempts={delivery.attempts}\n    {delivery.last_error}"
                )
        if not as_json:
            typer.echo(f"{len(rows)} dead-lettered message(s).")

    _run(_with_hub(_hub(), action))


@app.command()
def replay(
    message_id: Annotated[str | None, typer.Argument(help="Message id to replay.")] = None,
    target: Annotated[str | None, typer.Option(help="Only towards this target (with --all: every one of it).")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter of --target.")] = False,
) -> None:
    """Send dead-lettered messages again: one by id, or all of a target.

    Exits 1 when the message id names nothing that could be replayed (it is not in the store, or not
    dead-lettered); replaying an empty dead-letter queue with --all is not an error.
    """
    if (message_id is None) == (not replay_all):
        _fail("Give a message id, or --target T --all.", 2)
    if replay_all and not target:
        _fail("--all needs --target: say which target's dead-letter queue to replay.", 2)

    async def action(hub: Hub) -> int:
        await hub.broker.connect()
        if message_id is not None:
            result = await replay_message(hub, message_id, target=target, actor=_actor())
        else:
            result = await replay_target(hub, target or "", actor=_actor())
        for replayed_id, replayed_target in result.replayed:
            typer.echo(f"replayed {replayed_id} -> {replayed_target}")
        for sentence in result.skipped:
            typer.echo(sentence, err=True)
        typer.echo(f"{len(result.replayed)} message(s) replayed.")
        return 0 if result.replayed or replay_all else 1

    code = _run(_with_hub(_hub(), action))
    raise typer.Exit(code)


@app.command()
def trace(dossier_code: Annotated[str, typer.Argument(help="MaHoSo of the dossier.")]) -> None:
    """Show every message of one dossier, in order, and where each one is per target.

    Exits 1 when no message of the dossier is in the store.
    """

    async def action(hub: Hub) -> int:
        views = await hub.store.dossier_messages(dossier_code)
        if not views:
            typer.echo(
                f"No message of dossier {dossier_code} is in the store; check the MaHoSo "
                "and whether the sending system has sent it.",
                err=True,
            )
            return 1
        for view in views:
            env = view.envelope
            status = env.payload.get("TrangThaiHoSo") or env.payload.get("TrangThai")
            typer.echo(f"#{env.seq} {env.accepted_at:%Y-%m-%d %H:%M:%S} {env.type} status={status} id={env.id}")
            for d in view.deliveries:
                typer.echo(f"    -> {d.target}: {d.state} (attempts {d.attempts})")
            for e in view.events:
                where = f" {e.target}" if e.target else ""
                typer.echo(f"       {e.at:%H:%M:%S} {e.kind}{where}{': ' + e.detail if e.detail else ''}")
        return 0

    raise typer.Exit(_run(_with_hub(_hub(), action)))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the message store's tables (Alembic)."""
    settings = HubSettings()

    async def action() -> None:
        store = MessageStore.open(settings.database_url)
        try:
            await store.migrate()
        finally:
            await store.aclose()

    _run(action())
    typer.echo("The message store is up to date.")


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Option(help="Folder to write the *.schema.json files into.")] = Path("schemas/json"),
) -> None:
    """Write the JSON Schema of every message the hub knows, canonical and installed plugins' (the contract
    for ministries)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, model in schema_registry().items():
        schema = model.model_json_schema()
        path = out / (name.replace("/", ".") + ".schema.json")
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        typer.echo(str(path))


@config_app.command("docs")
def config_docs(
    out: Annotated[Path, typer.Option(help="File to write the Markdown table into.")] = Path("docs/configuration.md"),
) -> None:
    """Write the table of every setting (docs/configuration.md) from the settings model."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(settings_reference(), encoding="utf-8")
    typer.echo(str(out))


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object of every result.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds each network check may take.")] = 5.0,
) -> None:
    """Check settings, route files, keys, the store, RabbitMQ and every target; exit 1 when something must be fixed."""
    from hub.doctor import run_doctor  # noqa: PLC0415 - it imports Alembic: ~160 ms (15 %) more for every command

    raise typer.Exit(run_doctor(as_json=as_json, timeout=timeout, echo=typer.echo))


def settings_reference() -> str:
    """Markdown table of every ``HUB_*`` setting, its default and its meaning."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable (or a line in `.env`). Generated by `hub config docs`",
        "from `hub/settings.py`; do not edit by hand. Route files add one variable per sending system",
        "(`key_env`, e.g. `HUB_SYSTEM_KEY_ONESTOP`) and the `${VAR}` references in target configs.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in HubSettings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else f"`{default}`"
        if "SecretStr" in repr(field.annotation) and default is not None:
            shown = "(secret)"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `HUB_{name.upper()}` | {shown} | {description} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if _PLUGIN_PROBLEM is not None:
        _fail(_PLUGIN_PROBLEM, 2)
    try:
        app()
    except HubError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(1)
