"""The hub's own small error hierarchy.

Every adapter translates vendor and transport failures into one of these at its
boundary (see ``../shared/style.md`` point 4). The worker only knows two kinds:

* :class:`TransientDeliveryError` – may succeed later (timeouts, connection resets,
  5xx, 429). The message is retried with backoff. An expired token (401) is refreshed
  once inside the adapter and the call repeated, before anything is reported.
* :class:`PermanentDeliveryError` – will never succeed as sent (4xx validation,
  ``error_code`` -1 with a business reason, bad signatures, and a 401 that persists
  after a fresh token: the credentials in settings are wrong). Dead-lettered at once;
  after fixing the cause, ``hub replay --target T --all`` sends them again.

Messages are sentences a provincial IT officer can act on.
"""

from __future__ import annotations

__all__ = [
    "BrokerUnavailableError",
    "ConfigurationError",
    "DeliveryError",
    "HubError",
    "PermanentDeliveryError",
    "StoreUnavailableError",
    "TransientDeliveryError",
    "UnusableReplyError",
]


class HubError(Exception):
    """Base class of every error the hub raises on purpose."""


class ConfigurationError(HubError):
    """A settings value or a route file is wrong; the message says where and how to fix it."""


class StoreUnavailableError(HubError):
    """The message store (database) cannot be reached."""


class BrokerUnavailableError(HubError):
    """RabbitMQ cannot be reached or did not confirm a publish."""


class DeliveryError(HubError):
    """A target system did not take a message.

    ``reason`` is the sentence stored with the delivery and shown to operators;
    ``status_code`` is the HTTP status the target answered, when there was one.
    """

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class TransientDeliveryError(DeliveryError):
    """The target may take the message later; the hub retries with backoff.

    ``retry_after`` (seconds) is honoured when the target said how long to wait
    (HTTP ``Retry-After`` on a 429 or 503). ``unsent`` says the request certainly never left the
    hub (no connection could be made), so the target cannot have it: without an answer
    (``status_code`` None) the hub otherwise assumes it may have, and asks before sending again.
    """

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        unsent: bool = False,
    ) -> None:
        super().__init__(reason, status_code=status_code)
        self.retry_after = retry_after
        self.unsent = unsent


class PermanentDeliveryError(DeliveryError):
    """The target will never take the message as it is; it is dead-lettered with the reason."""


class UnusableReplyError(PermanentDeliveryError):
    """The target answered something the adapter cannot use: malformed or unsafe XML/JSON, a shape
    its contract does not allow. Never retried; a request-reply caller gets HTTP 502 (the target's
    fault, not the caller's), a delivery is dead-lettered with the reason."""
