"""The hub's adapter for the national population database (CSDLQG về dân cư), request-reply only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from adapters.population.client import DEFAULT_WSDL, PopulationClient
from adapters.population.mapping import OPERATIONS, TYPE_LOOKUP, lookup_result, request_fields, verify_result
from hub.plugin import (
    AdapterConfig,
    BaseUrl,
    ConfigurationError,
    Duration,
    Envelope,
    PermanentDeliveryError,
    RequestContext,
    Text,
)

__all__ = ["PopulationAdapter", "create_adapter"]


class PopulationAdapter:
    """Answers ``population.lookup`` (XacMinhThongTinNhanThan) and ``population.verify`` (XacThucThongTinCongDan)."""

    #: What ``check()`` proves (``hub doctor``).
    check_description = "read its WSDL"

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


class PopulationConfig(AdapterConfig):
    """Settings of a ``population`` target: the national population database's SOAP service, the
    integration code (MaTichHop) it issued the province, and the WSDL (default: the one in this package)."""

    adapter: ClassVar[str] = "population"

    service_url: BaseUrl
    integration_code: Text
    timeout_seconds: Duration = 10.0
    wsdl: Path = DEFAULT_WSDL


def create_adapter(target_id: str, config: Mapping[str, Any]) -> PopulationAdapter:
    """Build the adapter of target ``target_id`` from its settings (:class:`PopulationConfig`)."""
    settings = PopulationConfig.read(target_id, config)
    if not settings.wsdl.is_file():
        raise ConfigurationError(f"Target '{target_id}': the WSDL file {settings.wsdl} does not exist.")
    client = PopulationClient(service_url=settings.service_url, timeout=settings.timeout_seconds, wsdl=settings.wsdl)
    return PopulationAdapter(target_id, client, integration_code=settings.integration_code)
