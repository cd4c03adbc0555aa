"""``.env`` counts wherever settings are read: systems' keys (key_env) and the ``${VAR}`` of route files,
as it does for the HUB_* settings; a variable of the process environment wins over the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.auth import SystemKeys
from hub.routing import SystemSpec, TargetSpec, resolve_target_config
from hub.settings import HubSettings


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("HUB_SYSTEM_KEY_DOTENV", "HUB_TEST_PORTAL_URL", "HUB_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / ".env"
    path.write_text(
        "HUB_SYSTEM_KEY_DOTENV=key-from-the-env-file-0123456789\n"
        "HUB_TEST_PORTAL_URL=http://127.0.0.1:9/from-env-file\n"
        "HUB_HTTP_PORT=18999\n",
        encoding="utf-8",
    )
    return path


def test_a_system_key_in_dotenv_is_accepted(env_file: Path) -> None:
    system = SystemSpec(id="dotenv-system", key_env="HUB_SYSTEM_KEY_DOTENV")
    keys = SystemKeys([system], admin_key=None)
    assert keys.identify("Bearer key-from-the-env-file-0123456789") == system


def test_route_variables_come_from_dotenv_and_the_environment_wins(
    env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = TargetSpec(id="portal", adapter="national_portal", config={"base_url": "${HUB_TEST_PORTAL_URL}"})
    assert resolve_target_config(target)["base_url"] == "http://127.0.0.1:9/from-env-file"
    monkeypatch.setenv("HUB_TEST_PORTAL_URL", "http://127.0.0.1:9/from-environment")
    assert resolve_target_config(target)["base_url"] == "http://127.0.0.1:9/from-environment"
    assert HubSettings().http_port == 18999  # the same file as the settings read
