"""Text fields of the canonical messages hold no control characters.

NUL and the other C0 and C1 control characters have no place in a dossier, a payment or a parcel, and
PostgreSQL cannot store a NUL at all; tab, line feed and carriage return stay allowed (free text has lines).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, field_validator

__all__ = ["PlainText"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class PlainText(BaseModel):
    """A model whose text fields (``str``, and ``str`` items of lists) refuse control characters."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        for text in value if isinstance(value, list) else (value,):
            if isinstance(text, str) and (found := _CONTROL.search(text)):
                raise ValueError(f"holds a control character (U+{ord(found.group()):04X}); remove it")
        return value
