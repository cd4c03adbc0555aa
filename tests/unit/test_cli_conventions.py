"""Conventions every `hub` command keeps.

Exit codes: a command that looks up one named thing (`hub trace MaHoSo`, `hub replay <id>`) exits 1
with a sentence on stderr when it is not found; a command that lists (`hub dlq list`) exits 0 when
the list is empty. Help: every option and argument of every command says what it is for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from hub.cli import app
from hub.envelope import new_message_id
from hub.store import MessageStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/hub.db"
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    monkeypatch.setenv("HUB_ROUTES_DIR", str(ROOT / "routes"))
    return url


async def _store_one_message(database_url: str, dossier_code: str) -> str:
    store = MessageStore.open(database_url)
    try:
        await store.migrate()
        view, _ = await store.accept(
            message_type="dossier.upserted",
            source="onestop",
            dossier_code=dossier_code,
            payload={"MaHoSo": dossier_code, "TrangThaiHoSo": "1"},
            targets=[("national-portal", "dossier-sync")],
            idempotency_key=None,
            message_id=new_message_id(),
        )
    finally:
        await store.aclose()
    return view.envelope.id


def test_trace_of_an_unknown_dossier_exits_1_with_a_sentence_on_stderr(database_url: str) -> None:
    result = CliRunner().invoke(app, ["trace", "G99.99-000000-0000"])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("No message of dossier G99.99-000000-0000 is in the store; check the MaHoSo")


def test_trace_of_a_stored_dossier_exits_0_and_shows_its_messages(database_url: str) -> None:
    message_id = asyncio.run(_store_one_message(database_url, "G01.01-261126-0001"))
    result = CliRunner().invoke(app, ["trace", "G01.01-261126-0001"])
    assert result.exit_code == 0, result.output
    assert f"dossier.upserted status=1 id={message_id}" in result.stdout
    assert "-> national-portal: pending" in result.stdout
    assert result.stderr == ""


def test_an_empty_dead_letter_list_is_not_an_error(database_url: str) -> None:
    result = CliRunner().invoke(app, ["dlq", "list"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "0 dead-lettered message(s).\n"


def _commands(command: object, path: str) -> Iterator[tuple[str, object]]:
    """``command`` and, when it is a group, every command under it, each with its command line."""
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_option_and_argument_of_every_command_has_help() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    walked = list(_commands(root, "hub"))
    assert {"hub trace", "hub ingress", "hub routes check", "hub payments show"} <= {p for p, _ in walked}
    missing = [
        f"{path} {param.name}"
        for path, command in walked
        for param in getattr(command, "params", [])
        if not (getattr(param, "help", None) or "").strip()
    ]
    assert missing == [], "give these a help text: " + ", ".join(missing)
    without_description = [path for path, command in walked if not (getattr(command, "help", None) or "").strip()]
    assert without_description == [], "give these commands a docstring: " + ", ".join(without_description)
