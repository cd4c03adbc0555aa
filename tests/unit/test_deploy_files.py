"""docker-compose.yml, the Dockerfile, .env.example and docs/asyncapi.yaml stay consistent with the code.

Docker does not run on the CI machine, so these checks read the files: every service has what it
needs, every command names options the programs really have, and every required variable has a
sample in .env.example.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from hub.bootstrap import adapter_registry, known_schema_names
from hub.broker import Topology
from hub.cli import settings_reference
from hub.routing import load_routes
from hub.settings import HubSettings

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
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert text == settings_reference(), "docs/configuration.md is stale: run `hub config docs`"


def test_asyncapi_lists_every_type_that_travels_through_delivery_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SYSTEM_KEY_ONESTOP", "x")
    table = load_routes(ROOT / "routes", known_schemas=known_schema_names(), known_adapters=adapter_registry())
    delivered = {route.type: route.schema_name for route in table.routes if route.mode == "deliver"}
    spec = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
    envelope = spec["components"]["messages"]["Envelope"]["payload"]["properties"]
    assert set(envelope["type"]["enum"]) == set(delivered)
    refs = {ref["$ref"] for ref in envelope["payload"]["oneOf"]}
    assert refs == {f"../schemas/json/{name.replace('/', '.')}.schema.json" for name in delivered.values()}


# ---------------------------------------------------------------- production without Docker (deploy/)

SYSTEMD = ROOT / "deploy" / "systemd"
#: A role exits within HUB_SHUTDOWN_GRACE_SECONDS + this of SIGTERM (hub/runner.py, docs/deploy.md).
STOP_MARGIN_SECONDS = 5


def _unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as section -> key -> values (keys such as EnvironmentFile repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for raw in (SYSTEMD / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(value)
    return sections


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min)?", value)
    assert match, f"unexpected time span {value!r}"
    return float(match[1]) * (60 if match[2] == "min" else 1)


def _env_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line and line[0] != "#"
    )


def test_systemd_units_run_hub_commands_with_options_that_exist() -> None:
    worker_options = _env_file(SYSTEMD / "worker-national-portal.env")["LGSP_HUB_WORKER_OPTIONS"].split()
    commands = {
        "lgsp-hub-ingress.service": _unit("lgsp-hub-ingress.service")["Service"]["ExecStart"][0].split(),
        # the worker's options as the sample per-target file adds them through $LGSP_HUB_WORKER_OPTIONS
        "lgsp-hub-worker@.service": [
            part
            for word in _unit("lgsp-hub-worker@.service")["Service"]["ExecStart"][0].split()
            for part in (worker_options if word == "$LGSP_HUB_WORKER_OPTIONS" else [word])
        ],
    }
    for name, command in commands.items():
        assert Path(command[0]).name == "hub", f"{name} does not run the hub command: {command}"
    assert commands["lgsp-hub-worker@.service"][1:4] == ["worker", "--target", "%i"]
    programs = sorted({("hub", command[1]) for command in commands.values()})
    with ThreadPoolExecutor() as pool:
        helps = dict(zip(programs, pool.map(lambda program: _help(*program), programs), strict=True))
    for name, command in commands.items():
        for option in (part for part in command if part.startswith("--")):
            assert option in helps[("hub", command[1])], (
                f"{name} passes {option}, which `hub {command[1]}` does not have"
            )


def test_systemd_units_give_each_role_time_to_stop_and_share_the_target_and_settings() -> None:
    fields = HubSettings.model_fields
    grace = fields["shutdown_grace_seconds"].default
    bounds = {
        "lgsp-hub-ingress.service": grace + STOP_MARGIN_SECONDS,
        # a worker whose grace is raised up to the delivery timeout still fits
        "lgsp-hub-worker@.service": max(grace, fields["delivery_timeout_seconds"].default) + STOP_MARGIN_SECONDS,
    }
    for name, bound in bounds.items():
        unit = _unit(name)
        service = unit["Service"]
        assert service["KillSignal"] == ["SIGTERM"], name
        timeout = _seconds(service["TimeoutStopSec"][0])
        assert timeout > bound, f"{name}: TimeoutStopSec {timeout:g} s does not exceed the role's {bound:g} s to stop"
        assert service["EnvironmentFile"][0] == "/etc/lgsp-hub/hub.env", name
        assert service["WorkingDirectory"] == ["/etc/lgsp-hub"], name
        assert service["Restart"] == ["on-failure"], name
        assert service["NoNewPrivileges"] == ["yes"], name
        assert service["ProtectSystem"] == ["strict"], name
        assert "/var/lib/lgsp-hub" in service["ReadWritePaths"][0].split(), name
        assert unit["Unit"]["PartOf"] == ["lgsp-hub.target"], name
        assert unit["Install"]["WantedBy"] == ["lgsp-hub.target"], name
    assert (SYSTEMD / "lgsp-hub.target").is_file()
    deploy_doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for name in bounds:
        assert f"TimeoutStopSec={_unit(name)['Service']['TimeoutStopSec'][0]}" in deploy_doc, name


def test_the_backup_timer_starts_the_backup_service_which_runs_the_shipped_script() -> None:
    timer = _unit("lgsp-hub-backup.timer")
    assert timer["Timer"]["Unit"] == ["lgsp-hub-backup.service"]
    assert timer["Timer"]["OnCalendar"]
    assert (SYSTEMD / "lgsp-hub-backup.service").is_file()
    service = _unit("lgsp-hub-backup.service")["Service"]
    assert service["Type"] == ["oneshot"]
    script = ROOT / "deploy" / "backup" / Path(service["ExecStart"][0].split()[0]).name
    assert script.is_file()
    assert os.access(script, os.X_OK), f"{script} is not executable"


def test_the_sample_settings_file_has_every_variable_of_env_example_marked_as_samples() -> None:
    sample = _env_file(SYSTEMD / "hub.env.sample")
    example = _env_file(ROOT / ".env.example")
    assert {name for name in example if name.startswith("HUB_")} <= set(sample)
    for name, value in sample.items():
        if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$|_KEY_", name) and not name.endswith("_FILE") and value:
            assert "SAMPLE" in value, f"{name} in hub.env.sample is not marked as a sample"
    assert "SAMPLE" in sample["HUB_DATABASE_URL"]
    assert "SAMPLE" in sample["HUB_BROKER_URL"]


def _nginx_size(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    match = re.fullmatch(r"(\d+)([kmg]?)", value.lower())
    assert match, f"unexpected nginx size {value!r}"
    return int(match[1]) * units[match[2]]


def test_nginx_takes_the_bodies_the_ingress_takes_and_exposes_only_the_public_paths() -> None:
    conf = (ROOT / "deploy" / "nginx" / "lgsp-hub.conf").read_text(encoding="utf-8")
    [size] = re.findall(r"^\s*client_max_body_size\s+(\S+);", conf, re.MULTILINE)
    assert _nginx_size(size) == HubSettings.model_fields["max_body_bytes"].default
    locations = re.findall(r"location\s+(?:=\s+)?(\S+)\s*\{([^}]*)\}", conf)
    assert {path for path, body in locations if "proxy_pass" in body} == {
        "/v1/", "/console", "/console/", "/docs", "/docs/", "/redoc", "/openapi.json", "/healthz", "/metrics",
    }  # fmt: skip
    metrics = dict(locations)["/metrics"]
    assert "deny all;" in metrics
    assert "allow " in metrics
