"""What a request says about who is asking about whom, for the hub's audit trail.

A canonical request whose fields name the official, the agency, the purpose and the citizen
(population lookups, for instance) returns these facts; the hub records them for every call,
whatever its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AuditFacts"]


@dataclass(frozen=True, slots=True)
class AuditFacts:
    """What a request says about itself: the official (MaCanBo), agency (MaDonVi), purpose (MaDVC)
    and the citizen's ID number it is about (``subject``, stored masked)."""

    official: str | None = None
    agency: str | None = None
    purpose: str | None = None
    subject: str | None = None
