"""``hub doctor`` against a good setup (the real RabbitMQ, a migrated store, the mock portal) and a broken
one (closed ports, a store that cannot be created, a route file with an error, a missing key, an expired
certificate), and its checks one by one where a whole setup would be slow to build."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import sqlite3
import ssl
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from hub.bootstrap import adapter_registry, known_schema_names
from hub.cli import app
from hub.doctor import (
    check_certificate,
    check_database,
    check_route_files,
    check_system_keys,
    key_verdict,
    load_settings,
    migration_check,
)
from hub.store import MessageStore
from tests.support.harness import RABBITMQ_URL, free_port, write_routes

pytestmark = pytest.mark.integration

GOOD_KEYS = {
    "HUB_SYSTEM_KEY_ONESTOP": "doctor-test-key-onestop-0123456789",
    "HUB_SYSTEM_KEY_MINISTRY": "doctor-test-key-ministry-0123456789",
}


# ----------------------------------------------------------------------------- helpers


def _certificate(folder: Path, *, not_before: dt.datetime, not_after: dt.datetime) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 with these dates; its PEM file and its key's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@contextlib.contextmanager
def _tls_server(cert_file: Path, key_file: Path) -> Iterator[int]:
    """A tiny TLS server on 127.0.0.1 in a thread: handshakes, then closes. Yields its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(2)
            with contextlib.suppress(OSError), context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1024)
            connection.close()

    thread = threading.Thread(target=serve, name="doctor-tls-server", daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _doctor(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["doctor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in document["checks"]}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of its own (no .env from elsewhere), good keys, no admin key."""
    monkeypatch.chdir(tmp_path)
    for name, value in GOOD_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUB_ADMIN_KEY", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    return tmp_path


# ----------------------------------------------------------------------------- whole setups


def test_a_good_setup_passes_every_check(workdir: Path, portal_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database_url = f"sqlite+aiosqlite:///{workdir}/hub.db"

    async def migrate() -> None:
        store = MessageStore.open(database_url)
        try:
            await store.migrate()
        finally:
            await store.aclose()

    asyncio.run(migrate())
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.setenv("HUB_BROKER_URL", RABBITMQ_URL)
    routes = write_routes(workdir / "routes", portal_url, client_secret="doctor-test-portal-secret-0123456789")
    monkeypatch.setenv("HUB_ROUTES_DIR", str(routes))

    code, document = _doctor("--timeout", "5")

    assert [c for c in document["checks"] if c["status"] != "OK"] == []
    assert code == 0
    assert document["ok"] is True
    checks = _by_name(document)
    assert {"settings", "routes", "key HUB_SYSTEM_KEY_ONESTOP", "key HUB_SYSTEM_KEY_MINISTRY", "admin key"} <= set(
        checks
    )
    assert "RabbitMQ 3." in checks["broker"]["message"]
    assert "newest revision" in checks["migrations"]["message"]
    assert "access token" in checks["target national-portal"]["message"]
    assert document["summary_vi"].startswith("Không có vấn đề nào")


def test_a_broken_setup_fails_with_sentences(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed_target, closed_broker = free_port(), free_port()
    (workdir / "a-file").write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite+aiosqlite:///{workdir}/a-file/var/hub.db")
    monkeypatch.setenv("HUB_BROKER_URL", f"amqp://guest:guest@127.0.0.1:{closed_broker}/")
    monkeypatch.delenv("HUB_SYSTEM_KEY_MINISTRY")
    cert_file, key_file = _certificate(
        workdir / "tls", not_before=_now() - dt.timedelta(days=400), not_after=_now() - dt.timedelta(days=3)
    )
    routes = workdir / "routes"
    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    silent_port = int(silent.getsockname()[1])
    with silent, _tls_server(cert_file, key_file) as tls_port:
        routes.mkdir()
        (routes / "good.yaml").write_text(
            textwrap.dedent(
                f"""
                systems:
                  - id: onestop
                    key_env: HUB_SYSTEM_KEY_ONESTOP
                    allowed_types: [dossier.upserted]
                  - id: ministry
                    key_env: HUB_SYSTEM_KEY_MINISTRY
                    allowed_types: [dossier.upserted]
                targets:
                  - id: closed-portal
                    adapter: national_portal
                    config: {{base_url: "http://127.0.0.1:{closed_target}", client_id: c, client_secret: s}}
                  - id: expired-portal
                    adapter: national_portal
                    config: {{base_url: "https://127.0.0.1:{tls_port}", client_id: c, client_secret: s}}
                  - id: silent-portal
                    adapter: national_portal
                    config: {{base_url: "http://127.0.0.1:{silent_port}", client_id: c, client_secret: s}}
                routes:
                  - name: dossier-sync
                    type: dossier.upserted
                    schema: dossier.upserted/v1
                    targets: [closed-portal, expired-portal, silent-portal]
                """
            ),
            encoding="utf-8",
        )
        (routes / "bad.yaml").write_text(
            textwrap.dedent(
                """
                routes:
                  - name: progress
                    type: dossier.progress
                    schema: no.such.schema/v1
                    targets: [closed-portal]
                """
            ),
            encoding="utf-8",
        )
        monkeypatch.setenv("HUB_ROUTES_DIR", str(routes))
        code, document = _doctor("--timeout", "3")
        text = CliRunner().invoke(app, ["doctor", "--timeout", "3"]).stdout

    assert code == 1
    assert document["ok"] is False
    checks = _by_name(document)
    failed = {c["name"] for c in document["checks"] if c["status"] == "FAIL"}
    assert {
        "routes",
        "key HUB_SYSTEM_KEY_MINISTRY",
        "database",
        "broker",
        "target closed-portal",
        "target expired-portal",
        "target silent-portal",
        "certificate expired-portal",
    } <= failed
    assert checks["settings"]["status"] == "OK"
    assert checks["key HUB_SYSTEM_KEY_ONESTOP"]["status"] == "OK"
    assert "migrations" not in checks  # nothing to look at without a store
    routes_messages = " ".join(c["message"] for c in document["checks"] if c["name"] == "routes")
    assert "no.such.schema/v1" in routes_messages
    assert "leave this file out" in routes_messages
    assert "HUB_SYSTEM_KEY_MINISTRY is not set" in checks["key HUB_SYSTEM_KEY_MINISTRY"]["message"]
    assert "cannot be created" in checks["database"]["message"]
    assert "HUB_DATABASE_URL" in checks["database"]["message"]
    assert f"127.0.0.1:{closed_broker}" in checks["broker"]["message"]
    assert "HUB_BROKER_URL" in checks["broker"]["message"]
    assert "guest:***@" in checks["broker"]["message"]  # the password is not shown
    assert "connection refused" in checks["target closed-portal"]["message"]
    assert "did not finish within 3s" in checks["target silent-portal"]["message"]
    assert "CERTIFICATE_VERIFY_FAILED" in checks["target expired-portal"]["message"]
    assert "expired on" in checks["certificate expired-portal"]["message"]
    assert "3 day(s) ago" in checks["certificate expired-portal"]["message"]
    assert all(c["message_vi"] for c in document["checks"] if c["status"] == "FAIL" and c["name"] != "routes")
    assert document["problems"] == len([c for c in document["checks"] if c["status"] == "FAIL"])
    assert f"{document['problems']} problem(s) to fix" in text
    assert f"{document['problems']} vấn đề cần sửa" in text
    assert any(line.startswith("FAIL  broker") for line in text.splitlines())


# ----------------------------------------------------------------------------- single checks


def test_invalid_settings_name_their_variables_and_the_rest_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_PREFETCH", "0")
    monkeypatch.setenv("HUB_CONSOLE_USERS", "not json")
    monkeypatch.setenv("HUB_BROKER_URL", "amqp://doctor@127.0.0.1:5672/")

    settings, checks = load_settings()

    assert settings is not None
    assert settings.prefetch == 64
    assert settings.broker_url == "amqp://doctor@127.0.0.1:5672/"
    assert [c.status for c in checks] == ["FAIL", "FAIL"]
    text = " ".join(c.message for c in checks)
    assert "HUB_PREFETCH='0' is not valid" in text
    assert "HUB_CONSOLE_USERS cannot be read" in text


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (None, "FAIL"),
        ("", "FAIL"),
        ("SAMPLE-replace-with-a-random-key", "FAIL"),
        ("change-me-please-0123456789", "FAIL"),
        ("demo-0123456789abcdefghijklmnop", "WARN"),
        ("short-key", "WARN"),
        ("k3Jx9VqzR2mWp8LtYb5NcHd7FgA1sE4u", "OK"),
    ],
)
def test_key_verdicts(value: str | None, status: str) -> None:
    found, reason = key_verdict(value)
    assert found == status
    assert value is None or not value or value not in reason  # the key is never repeated


def test_keys_in_dotenv_count_and_samples_there_fail(tmp_path: Path, portal_url: str) -> None:
    table, _ = check_route_files(
        write_routes(tmp_path / "routes", portal_url),
        known_schemas=known_schema_names(),
        known_adapters=adapter_registry(),
    )
    assert table is not None
    env_file = {
        "HUB_SYSTEM_KEY_ONESTOP": "k3Jx9VqzR2mWp8LtYb5NcHd7FgA1sE4u",
        "HUB_SYSTEM_KEY_MINISTRY": "SAMPLE-replace-with-a-random-key",
    }

    checks = {c.name: c for c in check_system_keys(table, {}, env_file)}

    assert checks["key HUB_SYSTEM_KEY_ONESTOP"].status == "OK"
    assert "in .env" in checks["key HUB_SYSTEM_KEY_ONESTOP"].message
    assert checks["key HUB_SYSTEM_KEY_MINISTRY"].status == "FAIL"
    assert "sample value" in checks["key HUB_SYSTEM_KEY_MINISTRY"].message
    assert "SAMPLE-replace" not in checks["key HUB_SYSTEM_KEY_MINISTRY"].message


def test_migration_states() -> None:
    heads, known = {"0005"}, {"0001", "0002", "0003", "0004", "0005"}
    assert migration_check({"0005"}, heads, known).status == "OK"
    assert migration_check(set(), heads, known).status == "WARN"
    behind = migration_check({"0003"}, heads, known)
    assert behind.status == "WARN"
    assert "hub db upgrade" in behind.message
    ahead = migration_check({"0099"}, heads, known)
    assert ahead.status == "FAIL"
    assert "newer hub" in ahead.message


def test_an_unmigrated_sqlite_store_is_a_warning_and_an_unknown_revision_a_failure(tmp_path: Path) -> None:
    empty, ahead = tmp_path / "empty.db", tmp_path / "ahead.db"
    with contextlib.closing(sqlite3.connect(empty)) as connection:
        connection.execute("CREATE TABLE unrelated (x INTEGER)")
        connection.commit()
    with contextlib.closing(sqlite3.connect(ahead)) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('0099')")
        connection.commit()

    unmigrated = asyncio.run(check_database(f"sqlite+aiosqlite:///{empty}", 5))
    newer = asyncio.run(check_database(f"sqlite+aiosqlite:///{ahead}", 5))
    missing = asyncio.run(check_database(f"sqlite+aiosqlite:///{tmp_path}/not-yet/hub.db", 5))

    assert [(c.name, c.status) for c in unmigrated] == [("database", "OK"), ("migrations", "WARN")]
    assert "hub db upgrade" in unmigrated[1].message
    assert [(c.name, c.status) for c in newer] == [("database", "OK"), ("migrations", "FAIL")]
    assert [(c.name, c.status) for c in missing] == [("database", "WARN")]
    assert not (tmp_path / "not-yet").exists()  # the doctor creates nothing


def test_postgresql_store_before_and_after_migration(postgres_url: str) -> None:
    async def migrate() -> None:
        store = MessageStore.open(postgres_url)
        try:
            await store.migrate()
        finally:
            await store.aclose()

    asyncio.run(migrate())
    checks = asyncio.run(check_database(postgres_url, 5))
    assert [(c.name, c.status) for c in checks] == [("database", "OK"), ("migrations", "OK")]
    wrong_password = postgres_url.replace("postgres@", "postgres:wrong-password@", 1).replace(
        "127.0.0.1:5432", f"127.0.0.1:{free_port()}"
    )
    unreachable = asyncio.run(check_database(wrong_password, 3))
    assert [(c.name, c.status) for c in unreachable] == [("database", "FAIL")]
    assert "wrong-password" not in unreachable[0].message


@pytest.mark.parametrize(("days_left", "status"), [(10, "WARN"), (200, "OK")])
def test_certificate_expiry_of_a_trusted_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days_left: int, status: str
) -> None:
    cert_file, key_file = _certificate(
        tmp_path, not_before=_now() - dt.timedelta(days=1), not_after=_now() + dt.timedelta(days=days_left)
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trusted, as the adapters' httpx clients would
    with _tls_server(cert_file, key_file) as port:
        check = check_certificate("portal", "127.0.0.1", port, 3)
    assert check.status == status, check.message
    assert check.name == "certificate portal"


def test_an_untrusted_certificate_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    cert_file, key_file = _certificate(
        tmp_path, not_before=_now() - dt.timedelta(days=1), not_after=_now() + dt.timedelta(days=200)
    )
    with _tls_server(cert_file, key_file) as port:
        check = check_certificate("portal", "127.0.0.1", port, 3)
    assert check.status == "FAIL"
    assert "not trusted" in check.message


def test_a_sample_secret_fails_as_the_hub_refuses_it_unless_samples_are_allowed(
    workdir: Path, portal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hub doctor says what the hub does at start: a target's sample secret stops it (issue #17)."""
    routes = workdir / "routes"
    write_routes(routes, portal_url, client_secret="${HUB_NATIONAL_PORTAL_CLIENT_SECRET:-sample-secret-for-the-mock}")
    monkeypatch.setenv("HUB_ROUTES_DIR", str(routes))
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite+aiosqlite:///{workdir}/hub.db")
    monkeypatch.setenv("HUB_BROKER_URL", RABBITMQ_URL)
    monkeypatch.delenv("HUB_ALLOW_SAMPLE_SECRETS", raising=False)

    code, document = _doctor("--timeout", "5")
    config = _by_name(document)["config national-portal"]
    assert code == 1
    assert config["status"] == "FAIL"
    assert "client_secret (set HUB_NATIONAL_PORTAL_CLIENT_SECRET)" in config["message"]
    assert "refuses to start" in config["message"]

    monkeypatch.setenv("HUB_ALLOW_SAMPLE_SECRETS", "true")
    _, allowed = _doctor("--timeout", "5")
    assert _by_name(allowed)["config national-portal"]["status"] == "WARN"
