"""Route files: loading, cross-checks with file:line sentences, retry policy arithmetic."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hub.bootstrap import adapter_registry, known_schema_names
from hub.errors import ConfigurationError
from hub.routing import RetryPolicy, check_routes, load_routes, parse_duration, resolve_target_config

ROOT = Path(__file__).resolve().parents[2]


#: One route file with a mistake of every kind the cross-checks look for.
BROKEN_ROUTES = """\
systems:
  - id: onestop
    key_env: HUB_TEST_KEY_THAT_IS_NOT_SET
    allowed_types: [dossier.upserted, dossier.deleted]
targets:
  - id: national-portal
    adapter: national_portl
    config: {base_url: "${HUB_TEST_PORTAL_URL_NOT_SET}"}
routes:
  - name: dossier-sync
    type: dossier.upserted
    schema: dossier.upserted/v2
    targets: [national-portal, ministry-x]
"""


def _check(tmp_path: Path, text: str, name: str = "r.yaml"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return check_routes([path], known_schemas=known_schema_names(), known_adapters=adapter_registry())


def test_the_shipped_routes_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SYSTEM_KEY_ONESTOP", "x")
    table = load_routes(ROOT / "routes", known_schemas=known_schema_names(), known_adapters=adapter_registry())
    assert "national-portal" in table.targets
    assert {r.type for r in table.routes} >= {"dossier.upserted", "dossier.progress"}
    assert table.routes_for("dossier.upserted", "onestop")[0].ordering == "latest-state"


@pytest.mark.parametrize(
    ("value", "seconds"), [("500ms", 0.5), ("10s", 10), ("1m", 60), ("10m", 600), ("1h", 3600), (2, 2.0)]
)
def test_durations(value: str | int, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["10", "ten seconds", "-1s", "0s", 0])
def test_bad_durations_say_how_to_write_one(value: str | int) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_retry_policy_walks_the_tiers_and_repeats_the_last() -> None:
    policy = RetryPolicy(attempts=6, backoff=["1s", "10s", "1m"])
    assert [policy.delay_after(n) for n in range(1, 7)] == [1, 10, 60, 60, 60, None]


def test_retry_after_picks_the_smallest_tier_that_is_long_enough() -> None:
    policy = RetryPolicy(attempts=10, backoff=["1s", "10s", "1m", "10m"])
    assert policy.delay_after(1, retry_after=5) == 10
    assert policy.delay_after(1, retry_after=0.5) == 1
    assert policy.delay_after(3, retry_after=5) == 60
    assert policy.delay_after(1, retry_after=7200) == 600
    assert policy.delay_after(10, retry_after=1) is None


def test_problems_name_the_file_the_line_and_the_fix(tmp_path: Path) -> None:
    misspelt = BROKEN_ROUTES.replace("[national-portal, ministry-x]", "[national-portal]\n    retry: {backof: [1s]}")
    table, problems = _check(tmp_path, misspelt)
    assert table is None
    text = "\n".join(str(p) for p in problems)
    assert "r.yaml:14: error: In route 'dossier-sync', field 'retry.backof': 'backof' is not a known setting" in text


def test_cross_file_problems(tmp_path: Path) -> None:
    table, problems = _check(
        tmp_path,
        BROKEN_ROUTES,
    )
    assert table is None
    by_line = {(p.line, p.severity): p.message for p in problems}
    assert "adapter 'national_portl', which the hub does not have; use one of: national_portal" in by_line[(7, "error")]
    assert "HUB_TEST_PORTAL_URL_NOT_SET, which is not set" in by_line[(8, "warning")]
    assert "schema 'dossier.upserted/v2', which does not exist" in " ".join(p.message for p in problems if p.line == 10)
    assert any("target 'ministry-x', which no route file declares" in p.message for p in problems)
    assert any("may send 'dossier.deleted', but no route carries that type" in p.message for p in problems)
    assert any(p.severity == "warning" and "HUB_TEST_KEY_THAT_IS_NOT_SET is not set" in p.message for p in problems)


def test_yaml_syntax_errors_have_a_line(tmp_path: Path) -> None:
    table, problems = _check(tmp_path, "routes:\n  - name: a\n   type: [\n")
    assert table is None
    assert problems[0].line is not None
    assert "not valid YAML" in problems[0].message


def test_duplicates_across_files(tmp_path: Path) -> None:
    body = "targets:\n  - id: national-portal\n    adapter: national_portal\n"
    (tmp_path / "a.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(body, encoding="utf-8")
    table, problems = check_routes(
        [tmp_path / "a.yaml", tmp_path / "b.yaml"],
        known_schemas=known_schema_names(),
        known_adapters=adapter_registry(),
    )
    assert table is None
    assert any("declared twice (also in" in p.message and p.file.endswith("b.yaml") for p in problems)


def test_load_routes_raises_one_error_listing_every_problem(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("routes:\n  - name: Bad Name\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"r\.yaml:2"):
        load_routes(tmp_path, known_schemas=known_schema_names(), known_adapters=adapter_registry())
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_routes(tmp_path / "missing", known_schemas=[], known_adapters=[])


def test_target_config_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TEST_PORTAL_URL", "http://portal.example")
    table, _ = _check(
        tmp_path,
        """\
        targets:
          - id: national-portal
            adapter: national_portal
            config: {base_url: "${HUB_TEST_PORTAL_URL}", client_id: "${HUB_TEST_UNSET_ID:-lgsp}"}
        """,
    )
    assert table is not None
    config = resolve_target_config(table.targets["national-portal"])
    assert config == {"base_url": "http://portal.example", "client_id": "lgsp"}
    monkeypatch.delenv("HUB_TEST_PORTAL_URL")
    with pytest.raises(ConfigurationError, match="HUB_TEST_PORTAL_URL"):
        resolve_target_config(table.targets["national-portal"])
