"""Personal data is masked by the logging processor, whatever the call site logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from hub.observability import configure_logging, mask_personal_data, mask_text


def test_ids_phones_and_emails_are_masked_inside_free_text() -> None:
    text = "Công dân 001099012345 (CMND 123456789) gọi 0912345678 / +84912345678, thư an.nguyen@example.vn"
    masked = mask_text(text)
    for secret in ("001099012345", "123456789", "0912345678", "+84912345678", "an.nguyen@example.vn"):
        assert secret not in masked
    assert "00********45" in masked
    assert "@***" in masked


def test_known_personal_keys_are_masked_whatever_their_value() -> None:
    event = mask_personal_data(
        None,
        "info",
        {
            "event": "lookup",
            "HoVaTen": "Nguyễn Văn An",
            "SoDinhDanh": "001099012345",
            "DiaChi": {"ChiTiet": "12 Hàng Bạc"},
            "payload": {"ChuHoSo": "Trần Thị Bình", "MaHoSo": "H15.50.05.13-261008-0975"},
            "dossier": "H15.50.05.13-261008-0975",
            "timestamp_code": "20261126083000",
        },
    )
    assert event["HoVaTen"] == "Ng*********An"
    assert event["SoDinhDanh"] == "00********45"
    assert event["DiaChi"] == "***"
    assert "Trần Thị Bình" not in json.dumps(event, ensure_ascii=False)
    assert event["payload"]["MaHoSo"] == "H15.50.05.13-261008-0975"
    assert event["dossier"] == "H15.50.05.13-261008-0975"
    assert event["timestamp_code"] == "20261126083000"


def test_the_short_way_for_plain_values_still_masks_numbers_under_personal_keys_and_ids_in_text() -> None:
    event = mask_personal_data(
        None,
        "info",
        {
            "event": "accepted",
            "level": "info",
            "phone": 84912345678,  # a number, not a text, under a personal key
            "note": "gọi 0912345678",
            "duplicate": False,
            "attempt": 3,
            "route": None,
        },
    )
    assert event["phone"] == "84*******78"
    assert event["note"] == "gọi 09******78"
    assert (event["duplicate"], event["attempt"], event["route"], event["event"]) == (False, 3, None, "accepted")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put logging back as it was after a test that configures it (later tests must not write to its capture)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_logs_from_structlog_and_the_standard_library_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    structlog.get_logger("t").info("verify", SoDienThoai="0912345678", note="gọi 0912345678")
    logging.getLogger("third.party").warning("citizen 001099012345 not found")
    err = capsys.readouterr().err
    assert "0912345678" not in err
    assert "001099012345" not in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {line["event"] for line in lines} >= {"verify", "citizen 00********45 not found"}


def test_identifiers_that_merely_contain_digits_are_left_alone() -> None:
    message_id = "f3b4b60d-cfc9-4623-ba1f-263478081179"
    assert mask_text(f"message {message_id} delivered") == f"message {message_id} delivered"
    assert mask_text("dossier H15.50.05.13-261008-0975") == "dossier H15.50.05.13-261008-0975"
    assert mask_text("gọi 0912345678.") == "gọi 09******78."
    assert mask_text("CCCD:001099012345,") == "CCCD:00********45,"
