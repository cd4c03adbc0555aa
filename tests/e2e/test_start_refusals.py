"""Issue #17: what a hub started as a user starts it (``hub run``, ``hub ingress``) refuses outside
``--demo``, with a sentence that names what to set, before it serves anything: the shipped route files'
sample secrets (item 1) and login routes without the hub's public address (item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import ROOT, HubEnvironment, run_cli

pytestmark = pytest.mark.e2e


def _environment(tmp_path: Path, **extra: str) -> HubEnvironment:
    """The shipped route files, none of their secrets set (so the mocks' samples apply)."""
    return HubEnvironment(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        routes_dir=ROOT / "routes",
        logs_dir=tmp_path / "logs",
        extra=extra,
    )


@pytest.mark.parametrize("role", ["run", "ingress"])
def test_the_shipped_sample_secrets_stop_the_hub(tmp_path: Path, role: str) -> None:
    result = run_cli(_environment(tmp_path, HUB_ALLOW_SAMPLE_SECRETS="false"), role, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "Target 'national-portal' (national_portal) has a sample or empty secret in client_secret" in result.stderr
    assert "(set HUB_NATIONAL_PORTAL_CLIENT_SECRET)" in result.stderr
    assert "Traceback" not in result.stderr


def test_login_routes_without_the_public_address_stop_the_ingress(tmp_path: Path) -> None:
    environment = _environment(tmp_path, HUB_IDENTITY_PUBLIC_URL="")
    result = run_cli(environment, "ingress", timeout=60)
    assert result.returncode == 3, result.stderr
    assert "HUB_IDENTITY_PUBLIC_URL is not set" in result.stderr
    assert "vneid-login" in result.stderr
    assert "Traceback" not in result.stderr
