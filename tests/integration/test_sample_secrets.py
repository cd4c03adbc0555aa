"""Issue #17, item 1: outside ``hub run --demo`` a target's sample or empty secret stops the hub at start,
with a sentence naming the target, the setting and the variable to set. One mechanism for every plugin:
the ``Secret`` field type of ``hub.plugin``, checked when the hub builds adapters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from hub.adapter_config import SampleSecretError, looks_like_sample, sample_secrets_refused
from hub.bootstrap import build_hub
from hub.errors import ConfigurationError
from hub.plugin import AdapterConfig, Secret
from hub.settings import HubSettings
from tests.support.processes import ROOT

pytestmark = pytest.mark.integration

#: The shipped route files' targets with a secret, and the variable each secret is read from.
SHIPPED_SECRETS = {
    "national-portal": "HUB_NATIONAL_PORTAL_CLIENT_SECRET",
    "onestop": "HUB_ONESTOP_API_KEY",
    "payment-platform": "HUB_PAYMENT_SECRET",
    "vnpost": "HUB_VNPOST_PASSWORD",
    "vneid": "HUB_VNEID_CLIENT_SECRET",
}


@pytest.fixture
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No .env and none of the secrets' variables: the route files' defaults (the mocks' samples) apply."""
    monkeypatch.chdir(tmp_path)
    for name in [*SHIPPED_SECRETS.values(), "HUB_VNPOST_CALLBACK_TOKEN", "HUB_ALLOW_SAMPLE_SECRETS", "HUB_DEMO"]:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("value", "sample"),
    [
        ("sample-payment-secret-for-the-mock", True),
        ("SAMPLE-payment-partner-secret", True),
        ("mock-vneid-secret-not-real", True),
        ("test-secret-not-real", True),
        ("test-key-onestop-not-a-secret", True),
        ("change-me", True),
        ("please-change-me-now", True),
        ("", True),
        ("   ", True),
        ("k3Jx9-QzT0vY2p8sWmR4aLhN6cBdE1fG", False),
        ("the-platform-issued-this-2026", False),
    ],
)
def test_what_counts_as_a_sample(value: str, sample: bool) -> None:
    assert looks_like_sample(value) is sample


class _TokenConfig(AdapterConfig):
    adapter: ClassVar[str] = "example"
    token: Secret
    optional: Secret | None = None


def test_a_secret_field_refuses_samples_only_where_the_hub_says_so() -> None:
    config = {"token": "sample-token", "optional": "mock-x"}
    assert _TokenConfig.read("t", config).token == "sample-token", "a factory called outside the hub is not checked"
    with sample_secrets_refused(False):
        assert _TokenConfig.read("t", config).optional == "mock-x"
    with sample_secrets_refused(variables={"token": "HUB_T"}), pytest.raises(SampleSecretError) as refused:
        _TokenConfig.read("t", config)
    assert "Target 't' (example)" in str(refused.value)
    assert "optional, token (set HUB_T)" in str(refused.value)
    with pytest.raises(ConfigurationError, match="empty secret in token"):
        _TokenConfig.read("t", {"token": " "})  # empty is refused everywhere, the demo too
    with sample_secrets_refused():
        assert _TokenConfig.read("t", {"token": "k3Jx9-QzT0vY2p8sWmR4aLhN6cBdE1fG"}).optional is None


async def test_the_shipped_sample_secrets_stop_the_hub_outside_the_demo(clean_environment: Path) -> None:
    hub = build_hub(
        HubSettings(database_url=f"sqlite+aiosqlite:///{clean_environment}/hub.db", routes_dir=ROOT / "routes")
    )
    try:
        for target, variable in SHIPPED_SECRETS.items():
            with pytest.raises(SampleSecretError) as refused:
                hub.build_adapter(target)
            sentence = str(refused.value)
            assert f"Target '{target}'" in sentence
            assert f"(set {variable})" in sentence
            assert "hub run --demo" in sentence
            if target == "vnpost":  # every sample of the target, in one sentence
                assert "callback_token (set HUB_VNPOST_CALLBACK_TOKEN)" in sentence
        with pytest.raises(SampleSecretError):
            await hub.check_targets()
        population = hub.create_request_adapter("population-db")  # no secret: built
        await population.aclose()
    finally:
        await hub.aclose()


@pytest.mark.parametrize("settings", [{"demo": True}, {"allow_sample_secrets": True}])
async def test_the_demo_and_tests_against_the_mocks_may_keep_them(
    clean_environment: Path, settings: dict[str, Any]
) -> None:
    hub = build_hub(
        HubSettings(
            database_url=f"sqlite+aiosqlite:///{clean_environment}/hub.db", routes_dir=ROOT / "routes", **settings
        )
    )
    try:
        await hub.check_targets()
    finally:
        await hub.aclose()


async def test_real_secrets_from_the_environment_start(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in [*SHIPPED_SECRETS.values(), "HUB_VNPOST_CALLBACK_TOKEN"]:
        monkeypatch.setenv(variable, f"{variable.lower()}-issued-by-the-partner-0123456789")
    hub = build_hub(
        HubSettings(database_url=f"sqlite+aiosqlite:///{clean_environment}/hub.db", routes_dir=ROOT / "routes")
    )
    try:
        await hub.check_targets()
    finally:
        await hub.aclose()
