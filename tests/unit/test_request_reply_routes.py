"""Request-reply and login routes in route files, the token bucket, and the shipped route files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hub.bootstrap import adapter_registry, known_schema_names
from hub.ratelimit import RateLimiter
from hub.routing import RateLimit, Route, RouteProblem, RouteTable, check_routes, parse_rate

ROOT = Path(__file__).resolve().parents[2]

HEADER = """\
systems:
  - id: onestop
    key_env: HUB_SYSTEM_KEY_ONESTOP
    allowed_types: []
targets:
  - id: population-db
    adapter: population
    config: {service_url: "http://x/dancu", integration_code: X}
  - id: vneid
    adapter: vneid
    config: {issuer: "http://idp", client_id: hub}
  - id: national-portal
    adapter: national_portal
    config: {base_url: "http://portal"}
routes:
"""


def _check(tmp_path: Path, routes: str) -> tuple[RouteTable | None, list[RouteProblem]]:
    path = tmp_path / "r.yaml"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(routes), "  "), encoding="utf-8")
    return check_routes([path], known_schemas=known_schema_names(), known_adapters=adapter_registry())


def _errors(problems: list[RouteProblem]) -> list[str]:
    return [str(p) for p in problems if p.severity == "error"]


def test_a_request_reply_route_parses_timeout_and_rate(tmp_path: Path) -> None:
    table, problems = _check(
        tmp_path,
        """
        - name: lookup
          type: population.lookup
          schema: population.lookup/v1
          mode: request-reply
          timeout: 2500ms
          rate_limit: {rate: 120/m, burst: 4, per: route}
          targets: [population-db]
        """,
    )
    assert _errors(problems) == []
    assert table is not None
    route = table.routes[0]
    assert route.reply_timeout == 2.5
    assert route.rate_limit == RateLimit(rate=2.0, burst=4, per="route")
    assert table.request_targets() == ["population-db"]
    assert table.delivery_targets() == []
    assert table.retry_delays("population-db") == set()  # no retry queues for a request-only target


def test_default_timeout_is_ten_seconds(tmp_path: Path) -> None:
    table, _ = _check(
        tmp_path,
        """
        - name: lookup
          type: population.lookup
          schema: population.lookup/v1
          mode: request-reply
          targets: [population-db]
        """,
    )
    assert table is not None
    assert table.routes[0].reply_timeout == 10.0


@pytest.mark.parametrize(
    ("route", "sentence"),
    [
        (
            """
            - name: lookup
              type: population.lookup
              schema: population.lookup/v1
              mode: request-reply
              targets: [population-db, national-portal]
            """,
            "needs exactly one target",
        ),
        (
            """
            - name: sync
              type: dossier.upserted
              schema: dossier.upserted/v1
              timeout: 5s
              targets: [national-portal]
            """,
            "'timeout', which only applies to mode: request-reply",
        ),
        (
            """
            - name: sync
              type: dossier.upserted
              schema: dossier.upserted/v1
              rate_limit: {rate: 5/s}
              targets: [national-portal]
            """,
            "'rate_limit', which only applies to mode: request-reply or login",
        ),
        (
            """
            - name: login
              type: identity.login
              schema: identity.login/v1
              mode: login
              targets: [vneid]
            """,
            "login route without 'login: {return_urls",
        ),
        (
            """
            - name: lookup
              type: population.lookup
              schema: population.lookup/v1
              mode: request-reply
              ordering: latest-state
              targets: [population-db]
            """,
            "'ordering' only applies to deliver routes",
        ),
        (
            """
            - name: lookup
              type: population.lookup
              schema: population.lookup/v1
              mode: request-reply
              rate_limit: {rate: fast}
              targets: [population-db]
            """,
            "'fast' is not a rate; write it like 5/s",
        ),
        (
            """
            - name: lookup
              type: population.lookup
              schema: population.lookup/v1
              mode: ask
              targets: [population-db]
            """,
            "field 'mode'",
        ),
    ],
)
def test_mistakes_in_request_reply_and_login_routes_are_sentences_with_a_line(
    tmp_path: Path, route: str, sentence: str
) -> None:
    table, problems = _check(tmp_path, route)
    assert table is None
    errors = _errors(problems)
    assert any(sentence in e for e in errors), errors
    assert all(e.startswith(f"{tmp_path / 'r.yaml'}:") for e in errors)


def test_parse_rate() -> None:
    assert parse_rate("5/s") == 5.0
    assert parse_rate("90/m") == 1.5
    assert parse_rate("3600/h") == 1.0
    assert parse_rate(0.5) == 0.5
    with pytest.raises(ValueError, match="positive"):
        parse_rate("0/s")


def _route(**limit: object) -> Route:
    return Route.model_validate(
        {
            "name": "lookup",
            "type": "population.lookup",
            "schema": "population.lookup/v1",
            "mode": "request-reply",
            "targets": ["population-db"],
            "rate_limit": limit,
        }
    )


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    route = _route(rate="2/s", burst=3)
    assert [limiter.try_acquire(route, "onestop") for _ in range(3)] == [None, None, None]
    assert limiter.try_acquire(route, "onestop") == pytest.approx(0.5)
    assert limiter.try_acquire(route, "ministry") is None  # per source: its own bucket
    now[0] += 0.5
    assert limiter.try_acquire(route, "onestop") is None
    assert limiter.try_acquire(route, "onestop") == pytest.approx(0.5)
    now[0] += 60
    assert [limiter.try_acquire(route, "onestop") for _ in range(4)][-1] is not None  # never more than the burst


def test_a_route_wide_bucket_is_shared_by_every_system() -> None:
    limiter = RateLimiter(clock=lambda: 0.0)
    route = _route(rate="1/s", burst=1, per="route")
    assert limiter.try_acquire(route, "onestop") is None
    assert limiter.try_acquire(route, "ministry") == pytest.approx(1.0)


def test_the_shipped_identity_routes_check_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SYSTEM_KEY_ONESTOP", "x")
    paths = sorted((ROOT / "routes").glob("*.yaml"))
    table, problems = check_routes(paths, known_schemas=known_schema_names(), known_adapters=adapter_registry())
    assert _errors(problems) == []
    assert table is not None
    modes = {r.name: r.mode for r in table.routes}
    assert modes["population-lookup"] == modes["population-verify"] == "request-reply"
    assert modes["vneid-login"] == "login"
