"""The ingress's HTTP endpoints as module-level routers; what they need comes through dependencies
(:mod:`hub.api.deps`), set up once per application by :func:`hub.ingress.create_ingress_app`."""

from hub.api.health import router as health_router
from hub.api.messages import router as messages_router
from hub.api.requests import router as requests_router

__all__ = ["health_router", "messages_router", "requests_router"]
