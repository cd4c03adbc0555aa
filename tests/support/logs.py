"""Reading the hub's JSON log lines in tests."""

from __future__ import annotations

import re

__all__ = ["count_events", "has_event"]


def count_events(logs: str, event: str) -> int:
    """How many log lines have ``"event": <event>`` (with or without a space, as JSON allows)."""
    return len(re.findall(r'"event":\s*"' + re.escape(event) + '"', logs))


def has_event(logs: str, event: str) -> bool:
    return count_events(logs, event) > 0
