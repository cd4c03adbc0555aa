"""Structured logging (structlog, JSON) with personal data masked by one processor.

Call sites never mask; :func:`mask_personal_data` does it for every log line: values of
known personal fields are masked by key, and ID numbers, phone numbers and e-mail
addresses are masked wherever they appear inside strings.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import orjson
import structlog

__all__ = ["configure_logging", "mask_payload", "mask_personal_data", "mask_text", "mask_value"]

PERSONAL_KEYS = frozenset(
    {
        "chuhoso", "hovaten", "hoten", "fullname", "name_of_applicant", "sodinhdanh", "socmnd",
        "sogiaytochuhoso", "sodienthoai", "phone", "email", "diachi", "address", "thuongtru",
        "noiohientai", "quequan", "ngaythangnamsinh", "receiver", "sender", "madoituong",
    }
)  # fmt: skip

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Not inside a longer word or identifier (a UUID's last group can be 12 digits).
_PHONE = re.compile(r"(?<![\w-])(?:\+?84|0)\d{8,10}(?![\w-])")
_ID = re.compile(r"(?<![\w-])(\d{12}|\d{9})(?![\w-])")
#: Every e-mail address has an @, every phone or ID number eight digits in a row.
_MAYBE_PERSONAL = re.compile(r"@|\d{8}")


def mask_value(value: str) -> str:
    """Keep only enough to recognise a value: ``001099012345`` → ``00********45``."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_text(text: str) -> str:
    """Mask e-mail addresses, phone numbers and 9/12-digit ID numbers inside free text."""
    if _MAYBE_PERSONAL.search(text) is None:  # most log values (names of events, targets) have neither
        return text
    text = _EMAIL.sub(lambda m: mask_value(m.group(0).split("@")[0]) + "@***", text)
    text = _PHONE.sub(lambda m: mask_value(m.group(0)), text)
    return _ID.sub(lambda m: mask_value(m.group(0)), text)


def _mask(key: str | None, value: Any) -> Any:
    if key is not None and key.lower() in PERSONAL_KEYS and value is not None:
        return mask_value(str(value)) if not isinstance(value, dict | list) else "***"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(None, v) for v in value]
    return value


def mask_payload(payload: Any) -> Any:
    """A copy of a message payload with personal data masked (for showing it in the ops console)."""
    return _mask(None, payload)


#: Added by the processors that run before the masking (``add_log_level``, ``TimeStamper``): never personal.
_OWN_KEYS = frozenset({"level", "timestamp"})


def mask_personal_data(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask personal data in every key and value of a log line.

    It runs on every log line (one per accepted message in the ingress), so the common case, a text
    under a key that is not personal, takes a short way, and the processors' own keys are skipped."""
    for key, value in event_dict.items():
        if key in _OWN_KEYS or value is None:
            continue
        # values are replaced, no key added: iterating stays valid
        if type(value) is str and key.lower() not in PERSONAL_KEYS:
            event_dict[key] = mask_text(value)  # its own first look returns most values as they are
        else:
            event_dict[key] = _mask(key, value)
    return event_dict


def _json_line(event: Any, **_: Any) -> str:
    """orjson for log lines (several times faster than json); anything it cannot write is written as repr."""
    return orjson.dumps(event, default=repr).decode()


class _CurrentStderr:
    """``sys.stderr`` as it is when a line is written: a test harness or an embedding program may swap it
    after logging was configured, and lines must not go to the stream it replaced (perhaps closed)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Configure structlog and the standard library logging to emit one JSON object per line."""
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_personal_data,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(cast(TextIO, _CurrentStderr()))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "httpx", "httpcore", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
