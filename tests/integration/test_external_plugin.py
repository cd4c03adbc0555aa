"""A plugin in a package of its own (examples/civil-registry-plugin) is picked up through its entry point
and delivers messages, with no edit to the core: what a ministry connecting its system does.

The package is made importable as pip would install it: its module and a ``*.dist-info`` folder with
the ``hub.plugins`` entry point, on ``sys.path`` (for the hub in this process) and ``PYTHONPATH`` (for
the ``hub`` command).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.bootstrap import adapter_registry, load_plugins
from mocks._serve import serve_app
from tests.support.harness import RunningHub, eventually, running_hub, write_routes
from tests.support.payloads import dossier

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "civil-registry-plugin"
KEY = "test-civil-registry-key-not-a-secret"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example package as pip installs it, in a folder of its own on the import path."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "civil_registry_hub", site / "civil_registry_hub")
    info = site / "lgsp_hub_civil_registry-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lgsp-hub-civil-registry\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[hub.plugins]\ncivil_registry = civil_registry_hub:plugin\n")
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture
def ministry() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """The ministry's system: takes POSTs with the right key, remembers them."""
    received: list[dict[str, object]] = []

    async def take(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse({"error": "bad key"}, status_code=401)
        received.append({**(await request.json()), "idempotency_key": request.headers.get("idempotency-key")})
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/hub/messages", take, methods=["POST", "HEAD"])])
    with serve_app(app) as url:
        yield url, received


def test_the_example_imports_nothing_of_the_core_but_the_plugin_interface() -> None:
    tree = ast.parse((EXAMPLE / "civil_registry_hub" / "__init__.py").read_text(encoding="utf-8"))
    core = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hub"
    }
    assert core == {"hub.plugin"}


async def test_an_installed_plugin_package_delivers_through_its_route(
    installed: Path, ministry: tuple[str, list[dict[str, object]]], portal_url: str, tmp_path: Path
) -> None:
    url, received = ministry
    assert "civil_registry" in [plugin.name for plugin in load_plugins()]
    assert "civil_registry" in adapter_registry()
    routes = write_routes(tmp_path / "routes", portal_url)
    route_file = (EXAMPLE / "routes" / "civil-registry.yaml").read_text(encoding="utf-8")
    (routes / "civil-registry.yaml").write_text(
        route_file.replace("${HUB_CIVIL_REGISTRY_URL:-http://127.0.0.1:9100/hub/messages}", f"{url}/hub/messages")
        .replace("${HUB_CIVIL_REGISTRY_KEY}", KEY)
        .replace("[1s, 10s, 1m, 10m]", "[200ms, 500ms]"),
        encoding="utf-8",
    )
    hub: RunningHub
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db", routes_dir=routes, portal_url=portal_url
    ) as hub:
        payload = dossier()
        answer = await hub.post("dossier.upserted", payload)
        assert answer.status_code == 202, answer.text
        message_id = answer.json()["id"]
        assert sorted(answer.json()["targets"]) == ["civil-registry", "national-portal"]

        async def delivered() -> bool:
            return await hub.delivery_state(message_id, "civil-registry") == "delivered"

        await eventually(delivered)
    assert [(m["id"], m["idempotency_key"]) for m in received] == [(message_id, message_id)]
    sent = received[0]["payload"]
    assert isinstance(sent, dict)
    assert sent["MaHoSo"] == payload["MaHoSo"]
    assert received[0]["type"] == "dossier.upserted"


def test_the_hub_command_sees_the_installed_plugin(installed: Path, tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    routes.mkdir()
    shutil.copy(EXAMPLE / "routes" / "civil-registry.yaml", routes)
    (routes / "systems.yaml").write_text(
        "systems:\n  - id: onestop\n    key_env: HUB_SYSTEM_KEY_ONESTOP\n    allowed_types: [dossier.upserted]\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{installed}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["HUB_CIVIL_REGISTRY_KEY"] = KEY
    checked = subprocess.run(
        [sys.executable, "-m", "hub", "routes", "check", "--dir", str(routes)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 target(s)" in checked.stdout
    without = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    missing = subprocess.run(
        [sys.executable, "-m", "hub", "routes", "check", "--dir", str(routes)],
        capture_output=True, text=True, env=without, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "civil_registry" in missing.stdout
