"""docker-compose.yml, the Dockerfile, .env.example and docs/asyncapi.yaml stay consistent with the code.

Docker does not run on the CI machine, so these checks read the files: every service has what it
needs, every command names options the programs really have, and every required variable has a
sample in .env.example.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from hub.broker import Topology

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, object]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


def test_compose_has_the_services_users_expect() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    assert {"rabbitmq", "postgres", "hub-ingress", "hub-worker-national-portal", "mock-portal", "mock-onestop"} <= set(
        services
    )
    assert "management" in services["rabbitmq"]["image"]
    assert "127.0.0.1:15672:15672" in services["rabbitmq"]["ports"]
    assert services["hub-ingress"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_every_required_variable_has_a_sample() -> None:
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z_]+):\?", compose))
    samples = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    assert required <= set(samples), required - set(samples)
    for name in required:
        assert "SAMPLE" in samples[name] or name.endswith("_URL"), f"{name} in .env.example is not marked as a sample"


def _help(*command: str) -> str:
    result = subprocess.run(  # our own programs
        [sys.executable, "-m", *command, "--help"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compose_commands_use_options_that_exist() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    programs: dict[str, tuple[str, ...]] = {}
    for name, service in services.items():
        command = service.get("command")
        if not command:
            continue
        if command[0] == "hub":
            programs[name] = ("hub", command[1])
        elif command[:2] == ["python", "-m"]:
            programs[name] = (command[2],)
        else:
            raise AssertionError(f"service {name}: unexpected command {command}")
    # Each --help starts a Python process (about a second): all of them at once.
    unique = sorted(set(programs.values()))
    with ThreadPoolExecutor() as pool:
        helps = dict(zip(unique, pool.map(lambda program: _help(*program), unique), strict=True))
    for name, program in programs.items():
        command = services[name]["command"]
        for option in (part for part in command if part.startswith("--")):
            assert option in helps[program], (
                f"service {name} passes {option}, which `{' '.join(command[:3])}` does not have"
            )


def test_the_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for package in ("hub", "adapters", "schemas", "mocks", "routes"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_asyncapi_names_the_real_topology() -> None:
    spec = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
    topology = Topology("hub")
    assert spec["channels"]["deliver"]["address"] == topology.deliver_exchange
    assert spec["channels"]["targetQueue"]["address"].replace("{target}", "x") == topology.target_queue("x")
    assert spec["channels"]["deadLetters"]["address"].replace("{target}", "x") == topology.dlq("x")
    assert spec["channels"]["retryTier"]["address"].format(target="x", delayMs=1000) == topology.retry_queue("x", 1.0)
    for ref in spec["components"]["messages"]["Envelope"]["payload"]["properties"]["payload"]["oneOf"]:
        assert (ROOT / "docs" / ref["$ref"]).resolve().exists()


def test_the_configuration_reference_is_up_to_date() -> None:
    from hub.cli import settings_reference

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert text == settings_reference(), "docs/configuration.md is stale: run `hub config docs`"


def test_asyncapi_lists_every_type_that_travels_through_delivery_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.bootstrap import adapter_registry, known_schema_names
    from hub.routing import load_routes

    monkeypatch.setenv("HUB_SYSTEM_KEY_ONESTOP", "x")
    table = load_routes(ROOT / "routes", known_schemas=known_schema_names(), known_adapters=adapter_registry())
    delivered = {route.type: route.schema_name for route in table.routes if route.mode == "deliver"}
    spec = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
    envelope = spec["components"]["messages"]["Envelope"]["payload"]["properties"]
    assert set(envelope["type"]["enum"]) == set(delivered)
    refs = {ref["$ref"] for ref in envelope["payload"]["oneOf"]}
    assert refs == {f"../schemas/json/{name.replace('/', '.')}.schema.json" for name in delivered.values()}
