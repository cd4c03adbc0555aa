"""What every request meets at the hub's edge (hub.edge) and how store failures reach an answer (issue #17)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy.exc import DataError, OperationalError

from hub.edge import BodyTooLargeError, control_characters, json_problem, receive_body, request_problem
from hub.errors import StoreUnavailableError
from hub.services import schema_problems
from hub.store import reachable
from schemas import DossierUpserted, PopulationLookup
from tests.support.identity import population_request
from tests.support.payloads import dossier


def _scope(path: str = "/v1/messages", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict:  # type: ignore[type-arg]
    return {"type": "http", "path": path, "query_string": query, "headers": headers or []}


def test_control_characters_in_the_path_query_or_a_header_are_refused_with_a_sentence() -> None:
    assert request_problem(_scope()) is None
    assert request_problem(_scope("/v1/dossiers/Hà Nội/messages", b"a=%C3%A0+b")) is None
    assert request_problem(_scope(headers=[(b"user-agent", b"a\tb")])) is None
    assert request_problem(_scope("/v1/messages/\x00")) == "The address holds a control character (U+0000); remove it."
    assert request_problem(_scope(query=b"state=%00")) == (
        "The query string holds a control character (U+0000); remove it."
    )
    assert request_problem(_scope(query=b"x=%C2%85")) is not None  # C1 NEL, written as UTF-8
    assert request_problem(_scope(headers=[(b"idempotency-key", b"key\x01")])) == (
        "The idempotency-key header holds a control character (U+0001); remove it."
    )


def test_json_strings_and_keys_with_control_characters_are_named() -> None:
    assert control_characters({"a": ["line\none\ttab\r"], "b": 1}) == []
    assert control_characters({"a": [{"b": "x\x00"}], "c\x7f": 1}) == [
        "Field 'a.0.b' holds a control character (U+0000); remove it.",
        "The field name 'c?' holds a control character (U+007F); remove it.",
    ]
    assert json_problem(b'{"MaThamChieu": "R\\u0000"}') == (
        "Field 'MaThamChieu' holds a control character (U+0000); remove it."
    )
    assert json_problem(b"not json") is None
    assert len(control_characters([f"\x00{i}" for i in range(100)])) == 11


async def test_a_body_stops_being_read_at_its_limit() -> None:
    sent: list[int] = []

    async def receive() -> dict:  # type: ignore[type-arg]
        sent.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    with pytest.raises(BodyTooLargeError, match="more than 4096 bytes"):
        await receive_body(receive, 4096)
    assert len(sent) == 5  # 5000 bytes read of an endless body
    with pytest.raises(BodyTooLargeError, match="is 5000 bytes"):
        await receive_body(receive, 4096, "5000")
    assert len(sent) == 5  # a declared length past the limit: nothing read


async def test_an_unreachable_store_is_a_sentence_without_the_driver_text() -> None:
    driver = OperationalError("SELECT 1", {}, Exception('connection to server at "db.internal" failed: password'))
    with pytest.raises(StoreUnavailableError) as caught:
        async with reachable("The message store"):
            raise driver
    assert str(caught.value).startswith("The message store cannot be reached; check that the database is running")
    assert "db.internal" not in str(caught.value)
    assert "password" not in str(caught.value)
    refused_value = DataError("INSERT", {}, Exception("PostgreSQL text fields cannot contain NUL (0x00) bytes"))
    with pytest.raises(DataError):  # a value the database refuses is no outage: never a 503
        async with reachable("The message store"):
            raise refused_value


def test_dossier_schemas_refuse_unknown_fields_in_one_sentence_and_control_characters() -> None:
    with pytest.raises(ValidationError) as caught:
        DossierUpserted.model_validate(dossier(Rac1="x", Rac2="y", ChuHoSo="An\x00"))
    assert sorted(schema_problems(caught.value, skip=())) == [
        "Field 'ChuHoSo' holds a control character (U+0000); remove it.",
        "The schema has no fields 'Rac1', 'Rac2'; remove them (the hub neither stores nor sends on fields it "
        "does not know).",
    ]
    with pytest.raises(ValidationError, match=r"HoVaTen\n  Value error, holds a control character \(U\+0001\)"):
        PopulationLookup.model_validate(population_request(HoVaTen="Nguyễn\x01 An"))
    DossierUpserted.model_validate(dossier(TrichYeuHoSo="Dòng một\nDòng hai"))
