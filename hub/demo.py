"""Demo mode of ``hub run --demo``: every mock government system, and a one-stop system sending dossiers.

The mocks listen on consecutive ports from ``--mock-port-base`` (default 8080): the national portal
on +1, the population database +2, the payment platform +3, the one-stop system's receiving side +4,
VNPost +5 and VNeID +6. The demo points the shipped route files at them through the environment
variables those files read. Each run uses a fresh random system key (never one from the repository).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from hub.settings import HubSettings

__all__ = ["DEFAULT_MOCK_PORT_BASE", "DemoMock", "demo_mocks", "prepare_demo"]

DEFAULT_MOCK_PORT_BASE = 8080

MockRunner = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class DemoMock:
    name: str
    port: int
    env: str  # the variable the route file reads
    path: str = ""  # appended to the mock's base URL in that variable
    look: str = "/healthz"  # where a person looks at it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def demo_mocks(base: int) -> list[DemoMock]:
    return [
        DemoMock("national portal", base + 1, "HUB_NATIONAL_PORTAL_URL", look="/_mock/calls"),
        DemoMock("population database", base + 2, "HUB_POPULATION_URL", path="/dancu", look="/dancu?wsdl"),
        DemoMock("payment platform", base + 3, "HUB_PAYMENT_URL", look="/_mock/payments"),
        DemoMock(
            "one-stop system (receiving)", base + 4, "HUB_ONESTOP_URL", path="/lgsp/messages", look="/_mock/received"
        ),
        DemoMock("VNPost", base + 5, "HUB_VNPOST_URL", look="/_mock/orders"),
        DemoMock("VNeID", base + 6, "HUB_VNEID_ISSUER", look="/.well-known/openid-configuration"),
    ]


def _mock_app(mock: DemoMock, hub_url: str) -> ASGIApp:
    from mocks.national_portal.app import create_app as national_portal
    from mocks.onestop.receiver import create_receiver_app
    from mocks.payment.app import create_app as payment
    from mocks.population.app import create_app as population
    from mocks.vneid.app import create_app as vneid
    from mocks.vnpost.app import create_app as vnpost

    factories: dict[str, Callable[[], ASGIApp]] = {
        "national portal": national_portal,
        "population database": population,
        "payment platform": lambda: payment(callback_url=f"{hub_url}/v1/callbacks/payment"),
        "one-stop system (receiving)": lambda: create_receiver_app(
            api_key=os.environ.get("HUB_ONESTOP_API_KEY", "sample-onestop-key")
        ),
        "VNPost": lambda: vnpost(callback_url=f"{hub_url}/v1/callbacks/vnpost"),
        "VNeID": lambda: vneid(issuer=mock.url),
    }
    return factories[mock.name]()


def prepare_demo(
    settings: HubSettings, *, dossiers: int, rate: float, mock_port_base: int = DEFAULT_MOCK_PORT_BASE
) -> MockRunner:
    """Point the route files at the mocks and return the task that runs them and the sender."""
    key = os.environ.get("HUB_SYSTEM_KEY_ONESTOP") or "demo-" + secrets.token_urlsafe(24)
    os.environ["HUB_SYSTEM_KEY_ONESTOP"] = key
    mocks = demo_mocks(mock_port_base)
    for mock in mocks:
        os.environ[mock.env] = mock.url + mock.path
    hub_url = f"http://{settings.http_host}:{settings.http_port}"

    async def run_mocks(stop: asyncio.Event) -> None:
        from mocks.onestop.sender import send_lifecycles

        servers = [
            uvicorn.Server(
                uvicorn.Config(
                    _mock_app(mock, hub_url), host="127.0.0.1", port=mock.port, log_config=None, access_log=False
                )
            )
            for mock in mocks
        ]
        serving = [asyncio.create_task(server.serve()) for server in servers]
        await _wait_ready(f"{hub_url}/readyz")
        lines = "\n".join(f"  Mock {mock.name + ':':30} {mock.url}{mock.look}" for mock in mocks)
        _say(
            f"\nDemo running.\n{lines}\n"
            f"  Hub ingress:                        {hub_url}/v1/messages "
            "(key in HUB_SYSTEM_KEY_ONESTOP for this run)\n"
            "  Follow a dossier:                   hub trace <MaHoSo>     Dead letters: hub dlq list\n"
        )
        sender = asyncio.create_task(
            send_lifecycles(
                hub_url,
                key,
                dossiers=dossiers or 1_000_000,
                rate=rate,
                seed=secrets.randbelow(10_000),
                echo=lambda line: _say(f"one-stop -> hub: {line}"),
            )
        )
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([sender, stopper], return_when=asyncio.FIRST_COMPLETED)
        if sender.done() and not stop.is_set():
            _say(f"The mock one-stop system finished: {sender.result().summary()}. Ctrl-C stops the hub.")
            await stop.wait()
        sender.cancel()
        stopper.cancel()
        for server in servers:
            server.should_exit = True
        for task in serving:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run_mocks


def _say(line: str) -> None:
    """Demo narration for the person at the terminal (not a log line)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


async def _wait_ready(url: str, within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient() as client:
        while asyncio.get_running_loop().time() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
