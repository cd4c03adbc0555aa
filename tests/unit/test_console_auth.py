"""Pure parts of the ops console: password hashes, signed sessions, throttling, reason groups, labels."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.console._auth import (
    LocalAccounts,
    LoginThrottle,
    Role,
    SessionCodec,
    hash_password,
    verify_password,
)
from hub.console._i18n import status_name, translator
from hub.errors import ConfigurationError
from hub.services import reason_group, reason_key
from hub.settings import HubSettings


def test_a_password_hash_verifies_only_its_password() -> None:
    hashed = hash_password("một mật khẩu dài")
    assert hashed.startswith("scrypt$")
    assert "một mật khẩu dài" not in hashed
    assert verify_password("một mật khẩu dài", hashed)
    assert not verify_password("một mật khẩu dài ", hashed)
    assert not verify_password("anything", "not-a-hash")
    assert hash_password("same") != hash_password("same"), "each hash has its own salt"


def test_accounts_come_from_the_settings_and_a_plain_admin_password_is_hashed() -> None:
    settings = HubSettings(
        console_admin_password="admin password here",
        console_users={"lan": "viewer:" + hash_password("viewer password")},
    )
    accounts = LocalAccounts.from_settings(settings)
    admin = accounts.authenticate("admin", "admin password here")
    assert admin is not None
    assert admin.role is Role.OPERATOR
    assert admin.password_hash.startswith("scrypt$")
    viewer = accounts.authenticate("lan", "viewer password")
    assert viewer is not None
    assert viewer.role is Role.VIEWER
    assert not viewer.role.may_change
    assert accounts.authenticate("lan", "wrong") is None
    assert accounts.authenticate("nobody", "viewer password") is None
    assert not LocalAccounts.from_settings(HubSettings(console_admin_password=None, console_users={}))


def test_a_malformed_user_entry_is_a_configuration_error_that_says_how_to_fix_it() -> None:
    with pytest.raises(ConfigurationError, match="hub console hash-password --user lan"):
        LocalAccounts.from_settings(HubSettings(console_users={"lan": "admin:plaintext"}))


def test_a_signed_cookie_cannot_be_altered_or_used_after_it_expires() -> None:
    """The session cookie carries a login's random id, signed; the login itself is kept server side."""
    codec = SessionCodec(b"k" * 32, max_age_seconds=60)
    cookie = codec.dumps({"s": "a-random-login-id"})
    assert codec.loads(cookie) == {"s": "a-random-login-id"}
    payload, signature = cookie.rsplit(".", 1)
    forged = SessionCodec(b"k" * 32, max_age_seconds=60).dumps({"s": "another-id"})
    assert codec.loads(forged) is not None, "the same key signs the same way"
    assert codec.loads(forged.rsplit(".", 1)[0] + "." + signature) is None
    assert SessionCodec(b"other key" * 4, max_age_seconds=60).loads(cookie) is None
    assert codec.loads(payload) is None
    expired = SessionCodec(b"k" * 32, max_age_seconds=-1)  # the reader's max age decides: every cookie is too old
    assert expired.loads(codec.dumps({"s": "x"})) is None
    for not_ascii in ("đã sửa." + signature, payload + ".đ", "é"):
        assert codec.loads(not_ascii) is None, "a cookie that is not ASCII is refused, not a 500"
    oidc_flow = SessionCodec(b"k" * 32, max_age_seconds=60, purpose="hub-console-oidc")
    assert oidc_flow.loads(cookie) is None, "a cookie signed for one purpose is no good for another"


def test_login_throttling_counts_failures_per_name_and_address() -> None:
    throttle = LoginThrottle(limit=3, window=60)
    for _ in range(3):
        assert throttle.wait_seconds("admin", "10.0.0.1") == 0
        throttle.failed("admin", "10.0.0.1")
    assert throttle.wait_seconds("admin", "10.0.0.1") > 0
    assert throttle.wait_seconds("admin", "10.0.0.2") == 0
    assert throttle.wait_seconds("lan", "10.0.0.1") == 0
    throttle.succeeded("admin", "10.0.0.1")
    assert throttle.wait_seconds("admin", "10.0.0.1") == 0


def test_reasons_group_without_message_ids_and_dossier_codes() -> None:
    first = (
        "Message 0044c745-7f95-464b-9847-fb687c1710b4 to national-portal was rejected: dossier "
        "H15.50.05.13-261001-9173: MaTTHC '1.000894' bị từ chối. "
        "Replay with `hub replay 0044c745-7f95-464b-9847-fb687c1710b4`."
    )
    second = first.replace("0044c745-7f95-464b-9847-fb687c1710b4", "a904f4f1-5552-4876-8941-35a8e3207b6b").replace(
        "H15.50.05.13-261001-9173", "000.00.12.H15-261126-0001"
    )
    assert reason_group(first) == reason_group(second)
    assert "MaTTHC '1.000894'" in reason_group(first)
    assert reason_key(first) == reason_key(second)
    assert reason_key(first) != reason_key(first.replace("1.000894", "1.000895"))
    assert reason_group(None) == "(no reason recorded)"


def test_labels_in_both_languages_and_status_names() -> None:
    assert translator("vi")("replay") == "Gửi lại"
    assert translator("en")("replay") == "Replay"
    assert translator("fr")("replay") == "Gửi lại", "an unknown language falls back to Vietnamese"
    assert translator("en")("no-such-label") == "no-such-label"
    assert status_name(10, "vi") == "10 – Đã trả kết quả"
    assert status_name("5", "en") == "5 – More documents requested"
    assert status_name(42, "vi") == "42"


def test_hub_console_hash_password_prints_a_users_entry_that_logs_in() -> None:
    result = CliRunner().invoke(
        app,
        ["console", "hash-password", "--stdin", "--user", "lan", "--role", "operator"],
        input="mật khẩu đủ dài 2026\n",
    )
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("HUB_CONSOLE_USERS="))
    entry = json.loads(line.removeprefix("HUB_CONSOLE_USERS=").strip("'"))
    accounts = LocalAccounts.from_settings(HubSettings(console_users=entry))
    account = accounts.authenticate("lan", "mật khẩu đủ dài 2026")
    assert account is not None
    assert account.role is Role.OPERATOR
    short = CliRunner().invoke(app, ["console", "hash-password", "--stdin"], input="short\n")
    assert short.exit_code == 2
    assert "at least 12 characters" in short.output
