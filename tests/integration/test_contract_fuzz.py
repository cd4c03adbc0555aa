"""The OpenAPI document is a contract a fuzzer can hold the hub to: schemathesis generates requests from the
document the hub serves (valid and invalid bodies, parameters and headers of every operation, with a
system's key) and sends them to a running hub (real RabbitMQ, SQLite, the mock partners). No answer may
be a server error, and every answer must be one the document declares, in the shape it declares.

Bounded: ``MAX_EXAMPLES`` per operation and generation mode, derandomized, no deadline (one run is a
few hundred requests); a full probe is ``schemathesis run http://<hub>/openapi.json`` by hand.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mocks._serve import serve_app
from mocks.payment import DEFAULT_PARTNER_CODE
from mocks.payment import create_app as create_payment_app
from mocks.vneid import create_app as create_vneid_app
from mocks.vnpost import DEFAULT_USERNAME
from mocks.vnpost import create_app as create_vnpost_app
from tests.support.harness import ONESTOP_KEY, RunningHub, running_hub
from tests.support.identity import VNEID_CLIENT_ID
from tests.support.payloads import dossier, dossier_code, step

pytestmark = pytest.mark.integration

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
FuzzCase = schemathesis.Case[Operation]

#: Examples per operation and generation mode (positive, negative).
MAX_EXAMPLES = 25
PAYMENT_SECRET = "fuzz-payment-secret-7c1d0f3a9b2e4d58"
VNPOST_TOKEN = "fuzz-vnpost-token-52e8a1c4d9f07b36"
VNEID_SECRET = "fuzz-vneid-secret-9a4c2e7b1d0f3865"
VNPOST_PASSWORD = "fuzz-vnpost-password-60b2f7d8"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _write_routes(folder: Path, portal_url: str, payment_url: str, vnpost_url: str, vneid_url: str) -> Path:
    """One system that may use every endpoint; a target of each kind whose endpoints the document shows."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hub.yaml").write_text(
        textwrap.dedent(
            f"""
            systems:
              - id: onestop
                key_env: HUB_SYSTEM_KEY_ONESTOP
                allowed_types: [dossier.upserted, dossier.progress, payment.init, postal.cancel, identity.login]
            targets:
              - id: national-portal
                adapter: national_portal
                config: {{base_url: "{portal_url}", client_id: test-client, client_secret: fuzz-portal-secret-3e9d1a,
                         timeout_seconds: 3}}
              - id: payment-platform
                adapter: payment_platform
                config: {{base_url: "{payment_url}", partner_code: {DEFAULT_PARTNER_CODE}, secret: {PAYMENT_SECRET},
                         timeout_seconds: 3, query_after: 1h, query_every: 1h, give_up_after: 24h,
                         reconcile_interval: "0"}}
              - id: vnpost
                adapter: vnpost
                config:
                  base_url: {vnpost_url}
                  username: {DEFAULT_USERNAME}
                  password: {VNPOST_PASSWORD}
                  customer_code: C000001
                  callback_token: {VNPOST_TOKEN}
                  timeout_seconds: 3
                  poll_after: 1h
                  poll_interval: "0"
                  agency_name: Bộ phận Một cửa thử nghiệm
                  agency_phone: "02400000000"
                  agency_address: 1 Đường Thử
                  agency_province: "01"
                  agency_ward: "00070"
              - id: vneid
                adapter: vneid
                config: {{issuer: "{vneid_url}", client_id: {VNEID_CLIENT_ID}, client_secret: {VNEID_SECRET},
                         timeout_seconds: 3}}
            routes:
              - {{name: dossier-sync, type: dossier.upserted, schema: dossier.upserted/v1, ordering: latest-state,
                 targets: [national-portal]}}
              - {{name: dossier-progress, type: dossier.progress, schema: dossier.progress/v1,
                 targets: [national-portal]}}
              - {{name: payment-init, type: payment.init, schema: payment.init/v1, mode: request-reply, timeout: 3s,
                 targets: [payment-platform]}}
              - {{name: postal-cancel, type: postal.cancel, schema: postal.cancel/v1, mode: request-reply,
                 timeout: 3s, targets: [vnpost]}}
              - {{name: vneid-login, type: identity.login, schema: identity.login/v1, mode: login, targets: [vneid],
                 login: {{return_urls: ["http://127.0.0.1:9/onestop/"], min_loa: 1, assertion_ttl: 2m}}}}
            """
        ),
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def partner_urls() -> Iterator[tuple[str, str, str]]:
    with (
        serve_app(create_payment_app(secret=PAYMENT_SECRET)) as payment_url,
        serve_app(create_vnpost_app(password=VNPOST_PASSWORD, callback_token=VNPOST_TOKEN)) as vnpost_url,
        serve_app(create_vneid_app(client_id=VNEID_CLIENT_ID, client_secret=VNEID_SECRET)) as vneid_url,
    ):
        yield payment_url, vnpost_url, vneid_url


@pytest.fixture(scope="module")
async def fuzzed_hub(
    tmp_path_factory: pytest.TempPathFactory, portal_url: str, partner_urls: tuple[str, str, str]
) -> AsyncIterator[RunningHub]:
    folder = tmp_path_factory.mktemp("contract-fuzz")
    payment_url, vnpost_url, vneid_url = partner_urls
    with pytest.MonkeyPatch.context() as env:  # the module's hub outlives the per-test key fixture
        env.setenv("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
        async with running_hub(
            database_url=f"sqlite+aiosqlite:///{folder}/hub.db",
            routes_dir=_write_routes(folder / "routes", portal_url, payment_url, vnpost_url, vneid_url),
            portal_url=portal_url,
            identity_public_url="http://127.0.0.1:9/hub",
        ) as running:
            yield running


@dataclass
class FuzzReport:
    operations: list[str] = field(default_factory=list)
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    by_operation: dict[str, dict[int, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _known_good() -> dict[str, list[Any]]:
    """Bodies the hub takes, sent as they are besides the generated ones: a fuzzer rarely writes a dossier
    code, a real date and a catalogue code at once, and the 2xx answers must match the document too."""
    code = dossier_code()
    fees = [{"TenPhiLePhi": "Lệ phí đăng ký", "MaPhiLePhi": "LP01", "Gia": 100_000}]
    return {
        "POST /v1/messages": [
            {"type": "dossier.upserted", "payload": dossier(code)},
            {"type": "dossier.progress", "payload": step(code)},
        ],
        "POST /v1/requests/payment.init": [{"MaHoSo": code, "DanhSachLePhi": fees, "SoTien": 100_000}],
    }


def _fuzz(document: dict[str, Any], base_url: str) -> FuzzReport:
    """Every operation of ``document``, positive and negative examples, each answer checked (runs in a thread:
    schemathesis's client blocks, and the hub answers from the test's event loop)."""
    report = FuzzReport()
    started = time.monotonic()
    schema = schemathesis.openapi.from_dict(document)
    known_good = _known_good()
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            report.failures.append(f"The document has an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        report.operations.append(operation.label)
        headers = {"Authorization": f"Bearer {ONESTOP_KEY}"}
        if operation.path == "/v1/callbacks/vnpost":
            headers["X-VNPost-Token"] = VNPOST_TOKEN
        inputs = [operation.path_parameters, operation.query, operation.headers, operation.body]
        modes = [schemathesis.GenerationMode.POSITIVE]
        if any(len(part) for part in inputs):  # an operation without inputs has no invalid request
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        runs: list[tuple[str, Callable[[], None]]] = [
            (mode.value, _exchanges(operation, mode, base_url, headers, report)) for mode in modes
        ]
        runs += [
            (
                "known good",
                partial(_exchange, operation.Case(body=body, media_type="application/json"), base_url, headers, report),
            )
            for body in known_good.get(operation.label, [])
        ]
        for kind, run in runs:
            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup is a BaseExceptionGroup
                report.failures.append(
                    f"{operation.label} ({kind}): {''.join(traceback.format_exception_only(exc))[:3000]}"
                )
    report.seconds = time.monotonic() - started
    return report


def _exchanges(
    operation: Operation,
    mode: schemathesis.GenerationMode,
    base_url: str,
    headers: dict[str, str],
    report: FuzzReport,
) -> Callable[[], None]:
    """A Hypothesis test of ``MAX_EXAMPLES`` requests to ``operation``, each answer checked."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exchange(case: FuzzCase) -> None:
        _exchange(case, base_url, headers, report)

    return exchange


def _exchange(case: FuzzCase, base_url: str, headers: dict[str, str], report: FuzzReport) -> None:
    """Send ``case`` with ``headers`` (the key), count the answer and check it against the document."""
    response = case.call(base_url=base_url, headers=headers, allow_redirects=False, timeout=30)
    report.requests += 1
    report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
    seen = report.by_operation.setdefault(case.operation.label, {})
    seen[response.status_code] = seen.get(response.status_code, 0) + 1
    case.validate_response(response, checks=CHECKS, headers=headers)


async def test_every_operation_of_the_served_document_answers_as_it_declares(fuzzed_hub: RunningHub) -> None:
    document = (await fuzzed_hub.client.get(f"{fuzzed_hub.url}/openapi.json")).json()
    report = await asyncio.to_thread(_fuzz, document, fuzzed_hub.url)
    print(
        f"schemathesis: {len(report.operations)} operations, {report.requests} requests in {report.seconds:.1f} s; "
        f"statuses {dict(sorted(report.statuses.items()))}"
    )
    for label, statuses in report.by_operation.items():
        print(f"  {label}: {dict(sorted(statuses.items()))}")
    assert report.failures == [], "\n\n".join(report.failures)
    assert len(report.operations) == 14, report.operations  # 3 messages, 2 callbacks, 4 identity, 3 ops, 2 requests
    # The generated bodies got past the key and the envelope to the payload's schema, and good ones were taken.
    assert report.by_operation["POST /v1/messages"].get(202, 0) == 2
    assert report.by_operation["POST /v1/messages"].get(422, 0) > MAX_EXAMPLES
    assert report.by_operation["POST /v1/requests/payment.init"].get(200, 0) >= 1


async def test_the_document_declares_the_bodies_answers_and_bearer_key(fuzzed_hub: RunningHub) -> None:
    document = (await fuzzed_hub.client.get(f"{fuzzed_hub.url}/openapi.json")).json()
    assert document["components"]["securitySchemes"]["systemKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["systemKey"]["description"],
    }
    paths = document["paths"]
    send = paths["/v1/messages"]["post"]
    assert send["security"] == [{"systemKey": []}]
    variants = send["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert {v["properties"]["type"]["const"]: v["properties"]["payload"] for v in variants} == {
        "dossier.progress": {"$ref": "#/components/schemas/DossierProgress"},
        "dossier.upserted": {"$ref": "#/components/schemas/DossierUpserted"},
    }
    assert "MaHoSo" in document["components"]["schemas"]["DossierUpserted"]["properties"]
    # One path per request-reply route, with its own body.
    assert "/v1/requests/{message_type}" not in paths
    init = paths["/v1/requests/payment.init"]["post"]
    assert init["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PaymentInit"}
    # Every operation that takes a body declares it; every error answer has its shape.
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method == "post":
                assert "requestBody" in operation, f"{method.upper()} {path} declares no body"
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and "application/json" in answer.get("content", {}):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema != {}, f"{method.upper()} {path} {status} has no declared shape"
    assert paths["/v1/callbacks/payment"]["post"]["security"] == []
