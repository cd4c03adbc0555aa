"""The mock government systems of ``hub run --demo``, and the mock one-stop system sending dossiers.

The hub finds this module through the entry point ``mocks`` of the group ``hub.demo``
(``pyproject.toml``); it imports nothing of the hub, which hands it what a run needs (the hub's URL,
the one-stop system's key, the ports, how many dossiers at which rate, a stop event and where to
write). A hub installed without its mocks has no such entry point and says so.

The mocks listen on consecutive ports after ``port_base``: the national portal on +1, the population
database +2, the payment platform +3, the one-stop system's receiving side +4, VNPost +5 and VNeID +6.
Each names the variable the shipped route files read for its address (:attr:`DemoMock.env`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from mocks.national_portal.app import create_app as national_portal
from mocks.onestop.receiver import create_receiver_app
from mocks.onestop.sender import send_lifecycles
from mocks.payment.app import create_app as payment
from mocks.population.app import create_app as population
from mocks.vneid.app import create_app as vneid
from mocks.vnpost.app import create_app as vnpost

__all__ = ["DemoMock", "DemoMocks", "demo_runner"]

#: The one-stop system's key the receiving mock expects when HUB_ONESTOP_API_KEY is not set.
SAMPLE_ONESTOP_KEY = "sample-onestop-key"


@dataclass(frozen=True, slots=True)
class DemoMock:
    """One mock system of the demo: where it listens and how the hub is pointed at it."""

    name: str
    port: int
    env: str  # the variable the route file reads
    path: str = ""  # appended to the mock's base URL in that variable
    look: str = "/healthz"  # where a person looks at it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _QuietServer(uvicorn.Server):
    """A mock's server without uvicorn's SIGINT/SIGTERM handlers: the hub's stop them all (uvicorn's
    would re-raise a Ctrl-C when each server ends, which the hub would take for a second Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DemoMocks:
    """What ``hub run --demo`` starts besides the hub (the object of the ``hub.demo`` entry point)."""

    def mocks(self, port_base: int) -> list[DemoMock]:
        """The mocks, on the ports after ``port_base``."""
        return [
            DemoMock("national portal", port_base + 1, "HUB_NATIONAL_PORTAL_URL", look="/_mock/calls"),
            DemoMock("population database", port_base + 2, "HUB_POPULATION_URL", path="/dancu", look="/dancu?wsdl"),
            DemoMock("payment platform", port_base + 3, "HUB_PAYMENT_URL", look="/_mock/payments"),
            DemoMock(
                "one-stop system (receiving)",
                port_base + 4,
                "HUB_ONESTOP_URL",
                path="/lgsp/messages",
                look="/_mock/received",
            ),
            DemoMock("VNPost", port_base + 5, "HUB_VNPOST_URL", look="/_mock/orders"),
            DemoMock("VNeID", port_base + 6, "HUB_VNEID_ISSUER", look="/.well-known/openid-configuration"),
        ]

    async def run(
        self,
        *,
        port_base: int,
        hub_url: str,
        key: str,
        dossiers: int,
        rate: float,
        environ: Mapping[str, str],
        stop: asyncio.Event,
        started: Callable[[], Awaitable[None]],
        echo: Callable[[str], None],
    ) -> None:
        """Serve every mock until ``stop`` is set, and send ``dossiers`` lifecycles (0: without end) at
        ``rate`` messages per second to the hub at ``hub_url`` with ``key``. ``started`` is awaited
        once the mocks serve (the hub waits there until it is ready); ``echo`` gets one line per
        message sent. ``environ`` is where the mocks read their settings (HUB_ONESTOP_API_KEY)."""
        servers = [
            _QuietServer(
                uvicorn.Config(
                    _app(mock, hub_url, environ), host="127.0.0.1", port=mock.port, log_config=None, access_log=False
                )
            )
            for mock in self.mocks(port_base)
        ]
        serving = [asyncio.create_task(server.serve()) for server in servers]
        try:
            await started()
            sender = asyncio.create_task(
                send_lifecycles(
                    hub_url,
                    key,
                    dossiers=dossiers or 1_000_000,
                    rate=rate,
                    seed=secrets.randbelow(10_000),
                    echo=lambda line: echo(f"one-stop -> hub: {line}"),
                )
            )
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([sender, stopper], return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and not stop.is_set():
                echo(f"The mock one-stop system finished: {sender.result().summary()}. Ctrl-C stops the hub.")
                await stop.wait()
            sender.cancel()
            stopper.cancel()
        finally:
            for server in servers:
                server.should_exit = True
            for task in serving:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _app(mock: DemoMock, hub_url: str, environ: Mapping[str, str]) -> ASGIApp:
    factories: dict[str, Callable[[], ASGIApp]] = {
        "national portal": national_portal,
        "population database": population,
        "payment platform": lambda: payment(callback_url=f"{hub_url}/v1/callbacks/payment"),
        "one-stop system (receiving)": lambda: create_receiver_app(
            api_key=environ.get("HUB_ONESTOP_API_KEY", SAMPLE_ONESTOP_KEY)
        ),
        "VNPost": lambda: vnpost(callback_url=f"{hub_url}/v1/callbacks/vnpost"),
        "VNeID": lambda: vneid(issuer=mock.url),
    }
    return factories[mock.name]()


#: The entry point's object (``hub.demo``: ``mocks = "mocks.demo:demo_runner"``).
demo_runner = DemoMocks()
