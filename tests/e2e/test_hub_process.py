"""The ``hub`` command started as a user starts it: run, ingress + worker, CLI, demo."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.harness import ONESTOP_KEY, free_port, write_routes
from tests.support.logs import has_event
from tests.support.payloads import dossier, dossier_code, step
from tests.support.processes import HubEnvironment, HubProcess, run_cli

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {ONESTOP_KEY}"}


def _post(env: HubEnvironment, message_type: str, payload: dict[str, object]) -> str:
    response = httpx.post(
        f"{env.url}/v1/messages", json={"type": message_type, "payload": payload}, headers=AUTH, timeout=10
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _wait_state(env: HubEnvironment, message_id: str, state: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = httpx.get(f"{env.url}/v1/messages/{message_id}", headers=AUTH, timeout=5).json()
        if last["deliveries"][0]["state"] == state:
            return dict(last)
        time.sleep(0.2)
    raise AssertionError(f"message {message_id} never reached {state}: {last}")


@pytest.fixture
def environments() -> Iterator[list[HubEnvironment]]:
    """Hub environments a test creates; their queues are deleted afterwards."""
    created: list[HubEnvironment] = []
    yield created
    for environment in created:
        environment.delete_broker_objects()


@pytest.fixture
def environment(
    tmp_path: Path, portal_url: str, portal: httpx.Client, environments: list[HubEnvironment]
) -> HubEnvironment:
    environments.append(
        HubEnvironment(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
            routes_dir=write_routes(tmp_path / "routes", portal_url),
            logs_dir=tmp_path / "logs",
        )
    )
    return environments[-1]


def test_hub_run_delivers_dead_letters_replays_and_traces(environment: HubEnvironment, portal: httpx.Client) -> None:
    hub = HubProcess(environment, "run").start()
    try:
        hub.wait_ready()
        code = dossier_code()
        first = _post(environment, "dossier.upserted", dossier(code, status=1))
        _wait_state(environment, first, "delivered")
        portal.post("/_mock/faults", json={"reject_procedures": ["1.001193"]})
        rejected = _post(environment, "dossier.upserted", dossier(code, status=2))
        _wait_state(environment, rejected, "dead_lettered")

        listed = run_cli(environment, "dlq", "list", "--target", "national-portal", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [r["id"] for r in rows] == [rejected]
        assert "1.001193" in rows[0]["reason"]

        portal.delete("/_mock/faults")
        replayed = run_cli(environment, "replay", rejected)
        assert replayed.returncode == 0, replayed.stderr
        assert f"replayed {rejected} -> national-portal" in replayed.stdout
        _wait_state(environment, rejected, "delivered")
        assert portal.get(f"/_mock/dossiers/{code}").json()["current"]["TrangThaiHoSo"] == 2

        again = run_cli(environment, "replay", rejected)
        assert again.returncode == 1
        assert "not dead-lettered" in again.stderr

        traced = run_cli(environment, "trace", code)
        assert traced.returncode == 0, traced.stderr
        assert "status=1" in traced.stdout
        assert "status=2" in traced.stdout
        assert "national-portal: delivered" in traced.stdout
        assert "dead_lettered" in traced.stdout
        assert "replayed" in traced.stdout
    finally:
        assert hub.stop() == 0, hub.output()[-2000:]
    logs = hub.output()
    assert has_event(logs, "delivered")
    for personal in ("001000000001", "0900000001", "thu.nghiem@example.vn", "Nguyễn Thị Thử Nghiệm"):
        assert personal not in logs
        assert json.dumps(personal)[1:-1] not in logs


def test_ingress_and_worker_run_as_separate_processes(
    tmp_path: Path, portal_url: str, portal: httpx.Client, postgres_url: str, environments: list[HubEnvironment]
) -> None:
    environment = HubEnvironment(
        database_url=postgres_url,
        routes_dir=write_routes(tmp_path / "routes", portal_url),
        logs_dir=tmp_path / "logs",
    )
    environments.append(environment)
    worker_metrics = free_port()
    worker = HubProcess(
        environment, "worker", "--target", "national-portal", "--metrics-port", str(worker_metrics)
    ).start()
    ingress = HubProcess(environment, "ingress").start()
    try:
        ingress.wait_ready()
        worker.wait_log("worker_started")
        code = dossier_code()
        ids = [_post(environment, "dossier.upserted", dossier(code, status=1))]
        ids += [_post(environment, "dossier.progress", step(code, n)) for n in range(1, 4)]
        for message_id in ids:
            _wait_state(environment, message_id, "delivered")
        metrics = httpx.get(f"http://127.0.0.1:{worker_metrics}/metrics", timeout=5).text
        assert 'hub_deliveries_delivered_total{route="dossier-sync",target="national-portal"} 1.0' in metrics
    finally:
        codes = {"worker": worker.stop(), "ingress": ingress.stop()}  # stop both, whatever happens
    assert codes == {"worker": 0, "ingress": 0}, worker.output()[-2000:] + ingress.output()[-2000:]


def test_routes_check_reports_problems_with_file_and_line(environment: HubEnvironment, tmp_path: Path) -> None:
    good = run_cli(environment, "routes", "check", "--dir", str(environment.routes_dir))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK: 1 file(s), 2 system(s), 1 target(s), 2 route(s)." in good.stdout

    bad_dir = tmp_path / "bad-routes"
    bad_dir.mkdir()
    (bad_dir / "bad.yaml").write_text(
        "targets:\n"
        "  - id: national-portal\n"
        "    adapter: national_portal\n"
        "routes:\n"
        "  - name: dossier-sync\n"
        "    type: dossier.upserted\n"
        "    schema: dossier.upserted/v9\n"
        "    targets: [national-portal, nowhere]\n"
        "    retry: {attempts: 0, backoff: [1s]}\n",
        encoding="utf-8",
    )
    bad = run_cli(environment, "routes", "check", "--dir", str(bad_dir))
    assert bad.returncode == 1
    assert f"{bad_dir}/bad.yaml:9: error: In route 'dossier-sync', field 'retry.attempts'" in bad.stdout
    (bad_dir / "bad.yaml").write_text(
        "routes:\n  - name: dossier-sync\n    type: dossier.upserted\n    schema: dossier.upserted/v9\n"
        "    targets: [nowhere]\n",
        encoding="utf-8",
    )
    bad = run_cli(environment, "routes", "check", "--dir", str(bad_dir))
    assert bad.returncode == 1
    assert "bad.yaml:2: error: Route 'dossier-sync' names schema 'dossier.upserted/v9'" in bad.stdout
    assert "target 'nowhere', which no route file declares" in bad.stdout
