"""The national portal adapter answers "does the portal already have this?" (hub.adapter.ConfirmsDelivery).

The worker asks after a worker died mid-delivery or an attempt timed out; a wrong True would lose
a dossier state, so every case where the portal's answer cannot tell is None (send again).
"""

from __future__ import annotations

from adapters.national_portal import NationalPortalAdapter
from hub.adapter import ConfirmsDelivery
from tests.contract.conftest import MockPortalControl
from tests.contract.test_national_portal_adapter import CODE, NEW, dossier_payload, progress, upserted


def test_adapter_can_confirm_deliveries(adapter: NationalPortalAdapter) -> None:
    assert isinstance(adapter, ConfirmsDelivery)


async def test_a_dossier_the_portal_does_not_have_is_not_delivered(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    assert await adapter.already_delivered(upserted(dossier_payload()), NEW, None) is False
    assert [c["service"] for c in await mock_portal.calls()] == ["TraCuuHoSo"]


async def test_the_state_the_portal_shows_is_delivered_and_an_other_state_is_not(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    first = upserted(dossier_payload(status=1))
    await adapter.deliver(first, NEW)
    assert await adapter.already_delivered(first, NEW, None) is True
    second = upserted(dossier_payload(status=2))
    assert await adapter.already_delivered(second, NEW, first) is False
    assert (await mock_portal.dossier(CODE))["status_history"] == [1]


async def test_a_state_the_portal_cannot_tell_from_the_previous_one_is_unknown(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    first = upserted(dossier_payload(status=4))
    await adapter.deliver(first, NEW)
    # Only a field TraCuuHoSo does not show changed: the portal's answer fits both states.
    second = upserted(dossier_payload(status=4, TrichYeuHoSo="Bổ sung giấy tờ"))
    assert await adapter.already_delivered(second, NEW, first) is None
    assert [c["service"] for c in await mock_portal.calls()] == ["DongBoHoSoMC"]


async def test_progress_steps_cannot_be_confirmed(
    adapter: NationalPortalAdapter, mock_portal: MockPortalControl
) -> None:
    assert await adapter.already_delivered(progress(), NEW, None) is None
    assert await mock_portal.calls() == []
