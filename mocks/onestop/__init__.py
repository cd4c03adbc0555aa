"""Mock provincial one-stop system ("Hệ thống một cửa"): fake dossiers sent to the hub.

Run it with ``python -m mocks.onestop --help``; use it from Python with :func:`send_lifecycles`
or generate messages only with :class:`DossierGenerator`.
"""

from __future__ import annotations

from mocks.onestop.generator import (
    FAKE_ID_PREFIX,
    FAKE_PHONE_PREFIX,
    CatalogueProcedure,
    DossierGenerator,
    LifecycleMessage,
    load_catalogue,
    to_nfc,
)
from mocks.onestop.sender import BackoffPolicy, LifecycleSender, SendReport, send_lifecycles

__all__ = [
    "FAKE_ID_PREFIX",
    "FAKE_PHONE_PREFIX",
    "BackoffPolicy",
    "CatalogueProcedure",
    "DossierGenerator",
    "LifecycleMessage",
    "LifecycleSender",
    "SendReport",
    "load_catalogue",
    "send_lifecycles",
    "to_nfc",
]
