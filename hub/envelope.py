"""The envelope every message travels in, inside the hub and on the broker."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Envelope", "decode_envelope", "encode_envelope", "new_message_id", "nfc_json_text", "normalize_text"]


def new_message_id() -> str:
    return str(uuid.uuid4())


def normalize_text(value: Any) -> Any:
    """Return ``value`` with every string normalised to NFC (recursively).

    Vietnamese arrives precomposed (NFC) or decomposed (NFD); the national systems compare
    names byte for byte, so the hub stores and sends NFC only.
    """
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {normalize_text(k): normalize_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_text(v) for v in value]
    return value


def nfc_json_text(text: str) -> str:
    """JSON text with every string in it normalised to NFC, in one pass over the whole text: the same
    strings as :func:`normalize_text` on the parsed value, without walking the parsed value. JSON's own
    syntax around the strings is ASCII quotes, brackets and separators, which NFC leaves alone and which
    no following character composes with. A ``\\u`` escape is not a
    character yet in the text: a body with one is parsed first and normalised with :func:`normalize_text`.
    """
    return unicodedata.normalize("NFC", text)


class Envelope(BaseModel):
    """One accepted message: its identity, where it came from and its canonical payload.

    ``seq`` is the store's monotonic sequence number, used to order the states of one
    dossier; ``dossier_code`` is the MaHoSo the payload is about.
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_message_id)
    seq: int = 0
    type: str
    source: str
    dossier_code: str | None = None
    payload: dict[str, Any]
    accepted_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def encode_envelope(envelope: Envelope) -> bytes:
    return orjson.dumps(envelope.model_dump(mode="json"))


def decode_envelope(body: bytes) -> Envelope:
    """Parse a broker body; raises ``ValueError`` with a sentence when it is not an envelope."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"The broker message is not valid JSON ({exc}).") from exc
    try:
        return Envelope.model_validate(data)
    except Exception as exc:
        raise ValueError(f"The broker message is not a hub envelope: {exc}") from exc
