"""`hub routes check` reports root causes only: one mistake, one error line, naming its file and line.

An invalid declaration (or a file that cannot be read) is reported where it is; routes that refer to
it are not reported again as referring to something unknown.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.bootstrap import adapter_registry, known_schema_names
from hub.cli import app
from hub.routing import RouteProblem, check_routes

ROOT = Path(__file__).resolve().parents[2]

#: Three route files that check clean; each test puts one mistake (or two) into them.
FILES = {
    "hub.yaml": """\
systems:
  - id: onestop
    key_env: HUB_SYSTEM_KEY_ONESTOP
    allowed_types: [dossier.upserted, population.lookup]
targets:
  - id: national-portal
    adapter: national_portal
    config: {base_url: "http://portal"}
routes:
  - name: dossier-sync
    type: dossier.upserted
    schema: dossier.upserted/v1
    sources: [onestop]
    targets: [national-portal]
    retry:
      attempts: 10
      backoff: [1s, 10s]
""",
    "population.yaml": """\
targets:
  - id: population-db
    adapter: population
    config: {service_url: "http://x/dancu", integration_code: X}
routes:
  - name: population-lookup
    type: population.lookup
    schema: population.lookup/v1
    mode: request-reply
    sources: [onestop]
    targets: [population-db]
""",
    "archive.yaml": """\
targets:
  - id: archive
    adapter: onestop
    config: {url: "http://archive/messages"}
routes:
  - name: dossier-archive
    type: dossier.upserted
    schema: dossier.upserted/v1
    sources: [onestop]
    targets: [archive, national-portal]
""",
}


def _write(tmp_path: Path, changes: dict[str, tuple[str, str]]) -> list[Path]:
    """Write the files with ``changes`` (file → (text, replacement)) applied; each text must occur once."""
    paths = []
    for name, original in FILES.items():
        text = original
        if name in changes:
            old, new = changes[name]
            assert text.count(old) == 1, (name, old)
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _errors(paths: list[Path]) -> list[RouteProblem]:
    table, problems = check_routes(paths, known_schemas=known_schema_names(), known_adapters=adapter_registry())
    errors = [p for p in problems if p.severity == "error"]
    assert (table is None) == bool(errors)
    return errors


def _line(path: Path, needle: str | int) -> int:
    """The number of the one line holding ``needle`` (or ``needle`` itself when it is a number)."""
    if isinstance(needle, int):
        return needle
    numbers = [n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if needle in text]
    assert len(numbers) == 1, (path, needle, numbers)
    return numbers[0]


def test_the_files_check_clean(tmp_path: Path) -> None:
    paths = _write(tmp_path, {})
    _, problems = check_routes(paths, known_schemas=known_schema_names(), known_adapters=adapter_registry())
    assert problems == []


@pytest.mark.parametrize(
    ("file", "old", "new", "marker", "sentence"),
    [
        pytest.param(
            "hub.yaml",
            "attempts: 10",
            "attempts: 0",
            "attempts: 0",
            "In route 'dossier-sync', field 'retry.attempts': Input should be greater than or equal to 1.",
            id="retry-attempts-0",
        ),
        pytest.param(
            "hub.yaml",
            "key_env: HUB_SYSTEM_KEY_ONESTOP",
            "key_env: onestop-key",
            "key_env: onestop-key",
            "In system 'onestop', field 'key_env'",
            id="invalid-system",
        ),
        pytest.param(
            "hub.yaml",
            "    allowed_types:",
            "    alowed_types:",
            "alowed_types",
            "In system 'onestop', field 'alowed_types': 'alowed_types' is not a known setting here",
            id="misspelt-system-field",
        ),
        pytest.param(
            "hub.yaml",
            '    config: {base_url: "http://portal"}',
            '    config: {base_url: "http://portal"}\n    prefetch: 0',
            "prefetch: 0",
            "In target 'national-portal', field 'prefetch': Input should be greater than or equal to 1.",
            id="invalid-target",
        ),
        pytest.param(
            "population.yaml",
            "    adapter: population",
            "",
            "- id: population-db",
            "In target 'population-db', field 'adapter': 'adapter' is required.",
            id="target-without-adapter",
        ),
        pytest.param(
            "hub.yaml",
            "adapter: national_portal",
            "adapter: national_portl",
            "adapter: national_portl",
            "Target 'national-portal' uses adapter 'national_portl', which the hub does not have",
            id="unknown-adapter",
        ),
        pytest.param(
            "archive.yaml",
            "schema: dossier.upserted/v1",
            "schema: dossier.upserted/v9",
            "name: dossier-archive",
            "Route 'dossier-archive' names schema 'dossier.upserted/v9', which does not exist",
            id="unknown-schema",
        ),
        pytest.param(
            "hub.yaml",
            "schema: dossier.upserted/v1",
            "schema: dossier.progress/v1",
            "name: dossier-sync",
            "Routes 'dossier-sync' and 'dossier-archive' carry type 'dossier.upserted' with different schemas; "
            "one message type has one schema.",
            id="two-schemas-for-one-type",
        ),
        pytest.param(
            "hub.yaml",
            "systems:\n",
            "systems: [\n",
            "  - id: onestop",
            "The file is not valid YAML: expected the node content, but found '-'. "
            "References to what it declares (national-portal, onestop) were not checked.",
            id="yaml-syntax-error",
        ),
        pytest.param(
            "hub.yaml",
            "systems:\n",
            "sytems:\n",
            "sytems:",
            "'sytems' is not a known section of a route file; use systems, targets or routes.",
            id="misspelt-section",
        ),
        pytest.param(
            "population.yaml",
            "  - id: population-db\n    adapter: population\n    config:",
            "  id: population-db\n  adapter: population\n  config:",
            1,
            "'targets' must be a list, each item starting with '- ' on its own line.",
            id="section-not-a-list",
        ),
    ],
)
def test_one_mistake_gives_one_error_at_its_place(
    tmp_path: Path, file: str, old: str, new: str, marker: str | int, sentence: str
) -> None:
    paths = _write(tmp_path, {file: (old, new)})
    errors = _errors(paths)
    assert len(errors) == 1, "\n".join(map(str, errors))
    where = f"{tmp_path / file}:{_line(tmp_path / file, marker)}: error: "
    assert str(errors[0]).startswith(where + sentence), str(errors[0])


def test_a_file_that_is_not_utf8_is_one_error_and_its_ids_are_not_reported_elsewhere(tmp_path: Path) -> None:
    paths = _write(tmp_path, {})
    (tmp_path / "hub.yaml").write_bytes(FILES["hub.yaml"].encode("utf-8") + b"# \xff\xfe\n")
    errors = _errors(paths)
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'hub.yaml'}: error: The file is not UTF-8 text; save it as UTF-8. "
        "References to what it declares (national-portal, onestop) were not checked."
    ]


def test_a_reference_to_a_name_declared_nowhere_is_still_reported(tmp_path: Path) -> None:
    """Suppression is by name: the invalid system is reported once, the misspelt source too."""
    paths = _write(
        tmp_path,
        {
            "hub.yaml": ("attempts: 10", "attempts: 0"),
            "population.yaml": ("sources: [onestop]", "sources: [onestp]"),
        },
    )
    errors = _errors(paths)
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'hub.yaml'}:{_line(paths[0], 'attempts: 0')}: error: In route 'dossier-sync', "
        "field 'retry.attempts': Input should be greater than or equal to 1.",
        f"{tmp_path / 'population.yaml'}:6: error: Route 'population-lookup' names source 'onestp', "
        "which is not a system.",
    ]


def test_an_invalid_route_does_not_leave_its_type_uncarried(tmp_path: Path) -> None:
    """The system may send population.lookup: that the only route carrying it is invalid is one error."""
    paths = _write(tmp_path, {"population.yaml": ("mode: request-reply", "mode: ask")})
    errors = _errors(paths)
    assert len(errors) == 1, "\n".join(map(str, errors))
    assert str(errors[0]).startswith(
        f"{tmp_path / 'population.yaml'}:9: error: In route 'population-lookup', field 'mode'"
    )


def test_a_clash_of_modes_between_two_routes_is_reported_once(tmp_path: Path) -> None:
    """Reported at the second of the two routes (files are read in name order)."""
    paths = _write(
        tmp_path,
        {
            "archive.yaml": (
                "    targets: [archive, national-portal]",
                "    mode: request-reply\n    targets: [archive]",
            )
        },
    )
    errors = _errors(paths)
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'hub.yaml'}:10: error: Type 'dossier.upserted' is carried by routes of different modes; "
        "give one type one mode."
    ]


def test_hub_routes_check_on_the_shipped_files_with_attempts_0_prints_one_error(tmp_path: Path) -> None:
    """The first-run report: one mistake in national-portal.yaml, which declares the one-stop system."""
    for source in (ROOT / "routes").glob("*.yaml"):
        text = source.read_text(encoding="utf-8")
        if source.name == "national-portal.yaml":
            assert "attempts: 10" in text
            text = text.replace("attempts: 10", "attempts: 0", 1)
        (tmp_path / source.name).write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["routes", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    where = f"{tmp_path / 'national-portal.yaml'}:{_line(tmp_path / 'national-portal.yaml', 'attempts: 0')}"
    assert errors == [
        f"{where}: error: In route 'dossier-sync', field 'retry.attempts': Input should be greater than or equal to 1."
    ]
    assert result.stderr.startswith("1 error(s) in ")
