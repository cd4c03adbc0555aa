"""The hub's adapter for the national population database (CSDLQG về dân cư), request-reply only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.population.client import DEFAULT_WSDL, PopulationClient
from adapters.population.mapping import OPERATIONS, TYPE_LOOKUP, lookup_result, request_fields, verify_result
from hub.adapter import RequestContext
from hub.envelope import Envelope
from hub.errors import ConfigurationError, PermanentDeliveryError

__all__ = ["PopulationAdapter", "create_adapter"]


class PopulationAdapter:
    """Answers ``population.lookup`` (XacMinhThongTinNhanThan) and ``population.verify`` (XacThucThongTinCongDan)."""

    name: str = "population"

    def __init__(self, target_id: str, client: PopulationClient, *, integration_code: str) -> None:
        self.target_id = target_id
        self._client = client
        self._integration_code = integration_code

    async def request(self, envelope: Envelope, context: RequestContext) -> dict[str, Any]:
        operation = OPERATIONS.get(envelope.type)
        if operation is None:
            raise PermanentDeliveryError(
                f"Target {self.target_id} (population database) answers {', '.join(OPERATIONS)} only, not "
                f"'{envelope.type}'. Fix the route that sends this type to it."
            )
        fields = request_fields(envelope, integration_code=self._integration_code)
        reply = await self._client.call(operation, fields)
        if envelope.type == TYPE_LOOKUP:
            return lookup_result(reply, fields["MaYeuCau"])
        return verify_result(reply, fields["MaYeuCau"])

    async def check(self) -> None:
        await self._client.check()

    async def aclose(self) -> None:
        await self._client.aclose()


def create_adapter(target_id: str, config: Mapping[str, Any]) -> PopulationAdapter:
    """Build from a target's ``config``: ``service_url``, ``integration_code`` (MaTichHop),
    ``timeout_seconds`` (default 10), ``wsdl`` (default: the WSDL in this package)."""
    missing = [key for key in ("service_url", "integration_code") if not config.get(key)]
    if missing:
        raise ConfigurationError(
            f"Target '{target_id}' (population database) needs {' and '.join(missing)} in its config."
        )
    try:
        timeout = float(config.get("timeout_seconds", 10))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Target '{target_id}': timeout_seconds must be a number of seconds.") from exc
    wsdl = Path(str(config["wsdl"])) if config.get("wsdl") else DEFAULT_WSDL
    if not wsdl.is_file():
        raise ConfigurationError(f"Target '{target_id}': the WSDL file {wsdl} does not exist.")
    client = PopulationClient(service_url=str(config["service_url"]), timeout=timeout, wsdl=wsdl)
    return PopulationAdapter(target_id, client, integration_code=str(config["integration_code"]))
