"""The hub's adapter for VNPost: ``postal.order`` and ``postal.cancel`` (request-reply), and tracking.

``postal.order`` records the parcel in the hub's shipment book, fills what the request leaves out
(the applicant's name and phone from the dossier's latest state in the hub, the agency's address
from the target's settings) and calls postOrder with OrderNumber = MaHoSo. It is idempotent: a
request RabbitMQ gives to a second worker finds its parcel in the book, and an order VNPost already
has (Status "103", a crash between postOrder and the book) is adopted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from adapters.vnpost.client import VNPostClient, status_failure
from adapters.vnpost.shipments import ShipmentBook
from adapters.vnpost.wire import (
    STATUS_DUPLICATE_ORDER,
    OrderData,
    TrackingData,
    VNPostReply,
    order_body,
)
from hub.plugin import (
    AdapterConfig,
    BaseUrl,
    ConfigurationError,
    DeliveryError,
    Duration,
    DurationOrOff,
    Envelope,
    PermanentDeliveryError,
    RequestContext,
    Secret,
    Text,
    TransientDeliveryError,
    redact_error,
)
from schemas.postal import PostalCancel, PostalOrder, PostalParty, TrackingStatus

if TYPE_CHECKING:
    from adapters.vnpost.shipments import Shipment
    from hub.plugin import HubContext

__all__ = ["VNPostAdapter", "create_adapter"]

TYPE_ORDER = "postal.order"
TYPE_CANCEL = "postal.cancel"
_ModelT = TypeVar("_ModelT", bound=BaseModel)
_VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


class VNPostAdapter:
    """Request adapter of the hub's VNPost customer account."""

    #: What ``check()`` proves (``hub doctor``).
    check_description = "fetched an access token (VNPost accepts the credentials)"

    name: str = "vnpost"

    def __init__(
        self,
        target_id: str,
        client: VNPostClient,
        *,
        agency: PostalParty | None,
        service_name: str,
        poll_after: float,
        poll_interval: float,
        callback_token: str | None = None,
        reorder_window: float = 3.0,
    ) -> None:
        self.target_id = target_id
        self.client = client
        self.agency = agency
        self.service_name = service_name
        #: A parcel with no tracking event for this long is polled with getOrderTracking.
        self.poll_after = timedelta(seconds=poll_after)
        #: How often the ingress process looks for such parcels (0: only `hub post track`).
        self.poll_interval = poll_interval
        #: The token VNPost sends with its tracking callbacks (``X-VNPost-Token``); None: callbacks refused.
        self.callback_token = callback_token
        #: A status that arrives by callback while an earlier one is missing waits this long for it.
        self.reorder_window = timedelta(seconds=reorder_window)
        self._book: ShipmentBook | None = None
        self._context: HubContext | None = None

    def bind(self, context: HubContext) -> None:
        """Called by the core after the factory built it: the shipment book lives in the hub's database."""
        self._context = context
        self._book = ShipmentBook(context.engine)

    @property
    def book(self) -> ShipmentBook:
        if self._book is None:
            raise ConfigurationError(
                f"The VNPost adapter of target '{self.target_id}' has no shipment book; "
                "build it with Hub.build_adapter."
            )
        return self._book

    # ------------------------------------------------------------------ request-reply

    async def request(self, envelope: Envelope, context: RequestContext) -> dict[str, Any]:
        if envelope.type == TYPE_ORDER:
            return await self._order(envelope, _parse(PostalOrder, envelope))
        if envelope.type == TYPE_CANCEL:
            return await self._cancel(_parse(PostalCancel, envelope))
        raise PermanentDeliveryError(
            f"Target '{self.target_id}' (VNPost) answers {TYPE_ORDER} and {TYPE_CANCEL}, not '{envelope.type}'. "
            "Fix the route that sends it there."
        )

    async def _order(self, envelope: Envelope, order: PostalOrder) -> dict[str, Any]:
        book = self.book
        shipment, _ = await book.open(
            request_id=envelope.id,
            target=self.target_id,
            dossier_code=order.MaHoSo,
            direction=order.Direction,
            cod_amount=order.CODAmount,
            service_name=order.ServiceName or self.service_name,
        )
        if shipment.item_code is not None:
            return _order_answer(shipment.item_code, shipment)
        sender, receiver = await self._parties(order)
        body = order_body(
            {
                "CustomerCode": self.client.customer_code,
                "OrderNumber": order.MaHoSo,
                "ServiceName": order.ServiceName or self.service_name,
                "CODAmount": order.CODAmount,
                "Note": order.Note,
                "Sender": sender.model_dump(exclude_none=True),
                "Receiver": receiver.model_dump(exclude_none=True),
            }
        )
        action = f"postOrder for dossier {order.MaHoSo}"
        personal = [v for party in (sender, receiver) for v in (party.FullName, party.Phone, party.Address) if v]
        try:
            reply = await self.client.call("postOrder", body, action=action)
        except DeliveryError as exc:
            raise redact_error(exc, personal) from None
        if reply.Status == STATUS_DUPLICATE_ORDER:
            data = _order_data(reply, action)
            known = await book.by_item_code(data.ItemCode)
            if known is not None and known.id != shipment.id:
                await book.mark(shipment.id, "failed", reason="VNPost already has an open parcel for this dossier")
                raise PermanentDeliveryError(
                    f"VNPost already has an open parcel {data.ItemCode} for dossier {order.MaHoSo} (ordered by the "
                    f"hub earlier, request {known.id}). Cancel it with postal.cancel or wait until it is delivered."
                )
        elif not reply.ok:
            error = redact_error(status_failure(reply, action=action), personal)
            if isinstance(error, PermanentDeliveryError):
                await book.mark(shipment.id, "failed", reason=error.reason)
            raise error
        data = _order_data(reply, action)
        await book.set_item_code(shipment.id, item_code=data.ItemCode, fee=data.TotalFee, poll_after=self.poll_after)
        await book.record_event(
            data.ItemCode,
            status=int(TrackingStatus.CREATED),
            status_name=TrackingStatus.CREATED.label_vi,
            event_time=_now_text(),
            post_office=None,
            note=None,
            channel="order",
            poll_after=self.poll_after,
        )
        fresh = await book.get(shipment.id)
        return _order_answer(data.ItemCode, fresh or shipment)

    async def _parties(self, order: PostalOrder) -> tuple[PostalParty, PostalParty]:
        """Sender and receiver, with the applicant's name/phone from the dossier and the agency from settings."""
        applicant = order.Receiver if order.Direction == "result" else order.Sender
        agency = order.Sender if order.Direction == "result" else order.Receiver
        agency = agency or self.agency
        if agency is None:
            side = "Sender" if order.Direction == "result" else "Receiver"
            raise PermanentDeliveryError(
                f"postal.order for dossier {order.MaHoSo} has no {side} and target '{self.target_id}' has no agency "
                "address in its settings (agency_name, agency_phone, agency_address, agency_province, agency_ward)."
            )
        if applicant is None:  # the schema requires it; kept for type narrowing
            raise PermanentDeliveryError(f"postal.order for dossier {order.MaHoSo} has no applicant address.")
        if applicant.FullName is None or applicant.Phone is None:
            applicant = await self._complete_from_dossier(order.MaHoSo, applicant)
        if order.Direction == "result":
            return agency, applicant
        return applicant, agency

    async def _complete_from_dossier(self, dossier_code: str, party: PostalParty) -> PostalParty:
        state = await self._context.latest_state(dossier_code) if self._context is not None else None
        known = state.payload if state is not None else {}
        name = party.FullName or known.get("ChuHoSo")
        phone = party.Phone or known.get("SoDienThoai")
        if not name or not phone:
            raise PermanentDeliveryError(
                f"postal.order for dossier {dossier_code} lacks the applicant's FullName or Phone, and the hub holds "
                "no dossier state with ChuHoSo and SoDienThoai to take them from. Send them in the request, or send "
                "the dossier (dossier.upserted) first."
            )
        return party.model_copy(update={"FullName": name, "Phone": phone})

    async def _cancel(self, ask: PostalCancel) -> dict[str, Any]:
        book = self.book
        parcels = [s for s in await book.for_dossier(ask.MaHoSo) if s.target == self.target_id and s.item_code]
        if ask.ItemCode is not None:
            parcels = [s for s in parcels if s.item_code == ask.ItemCode]
        else:
            parcels = [s for s in parcels if s.state == "open"]
        if len(parcels) != 1:
            found = "no open parcel" if not parcels else f"{len(parcels)} open parcels"
            raise PermanentDeliveryError(
                f"Dossier {ask.MaHoSo} has {found} through target '{self.target_id}'"
                + ("; name the one to cancel in ItemCode." if parcels else ".")
            )
        parcel = parcels[0]
        if parcel.state == "cancelled":
            return {"MaHoSo": ask.MaHoSo, "ItemCode": parcel.item_code, "Cancelled": True}
        if parcel.state == "delivered":
            raise PermanentDeliveryError(f"Parcel {parcel.item_code} of dossier {ask.MaHoSo} was already delivered.")
        action = f"cancelOrder of parcel {parcel.item_code} (dossier {ask.MaHoSo})"
        reply = await self.client.call(
            "cancelOrder", {"ItemCode": parcel.item_code, "Reason": ask.Reason}, action=action
        )
        if not reply.ok:
            raise status_failure(reply, action=action)
        await book.mark(parcel.id, "cancelled", reason=ask.Reason)
        return {"MaHoSo": ask.MaHoSo, "ItemCode": parcel.item_code, "Cancelled": True}

    # ------------------------------------------------------------------ used by the tracker

    async def tracking(self, item_code: str) -> TrackingData:
        action = f"getOrderTracking of parcel {item_code}"
        reply = await self.client.call("getOrderTracking", {"ItemCode": item_code}, action=action)
        if not reply.ok:
            raise status_failure(reply, action=action)
        try:
            return TrackingData.model_validate(reply.Data)
        except ValidationError:
            raise TransientDeliveryError(
                f"VNPost answered {action} without tracking data; the hub will retry."
            ) from None

    async def check(self) -> None:
        """Fetch a fresh token: VNPost is reachable and accepts the credentials."""
        await self.client.fetch_token()

    async def aclose(self) -> None:
        await self.client.aclose()


def _order_data(reply: VNPostReply, action: str) -> OrderData:
    try:
        return OrderData.model_validate(reply.Data)
    except ValidationError:
        raise TransientDeliveryError(f"VNPost answered {action} without an ItemCode; the hub will retry.") from None


def _order_answer(item_code: str, shipment: Shipment) -> dict[str, Any]:
    return {
        "MaHoSo": shipment.dossier_code,
        "OrderNumber": shipment.order_number,
        "ItemCode": item_code,
        "Direction": shipment.direction,
        "TotalFee": shipment.fee,
        "Status": shipment.status if shipment.status is not None else int(TrackingStatus.CREATED),
    }


def _now_text() -> str:
    """``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh, as VNPost writes times."""
    return datetime.now(_VIETNAM).strftime("%Y%m%d%H%M%S")


def _parse(model: type[_ModelT], envelope: Envelope) -> _ModelT:
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise PermanentDeliveryError(f"Request {envelope.id} ({envelope.type}) is not valid: {problems}.") from None


class VNPostConfig(AdapterConfig):
    """Settings of a ``vnpost`` target (``config:`` in the route file)."""

    adapter: ClassVar[str] = "vnpost"

    base_url: BaseUrl
    username: Text
    password: Secret  # reference an environment variable
    customer_code: Text
    timeout_seconds: Duration = 10.0
    service_name: Text = "BK"  # VNPost's default service
    poll_after: Duration = 7200.0  # a parcel without tracking news for this long is polled
    #: How often the ingress looks for such parcels; 0 = only ``hub post track``.
    poll_interval: DurationOrOff = 300.0
    #: The token VNPost sends in ``X-VNPost-Token`` with tracking callbacks; unset = callbacks refused.
    callback_token: Secret | None = None
    #: A status that arrives before an earlier one waits this long for it (statuses go on in order).
    reorder_window: DurationOrOff = 3.0
    # The agency's side of every parcel (none without an address).
    agency_name: str | None = None
    agency_phone: str | None = None
    agency_address: str | None = None
    agency_province: str = ""
    agency_district: str | None = None
    agency_ward: str = ""


def create_adapter(target_id: str, config: Mapping[str, Any]) -> VNPostAdapter:
    """Build the adapter of target ``target_id`` from its settings (:class:`VNPostConfig`)."""
    settings = VNPostConfig.read(target_id, config)
    agency = None
    if settings.agency_address:
        try:
            agency = PostalParty(
                FullName=settings.agency_name,
                Phone=settings.agency_phone,
                Address=settings.agency_address,
                ProvinceCode=settings.agency_province,
                DistrictCode=settings.agency_district or None,
                WardCode=settings.agency_ward,
            )
        except ValidationError as exc:
            raise ConfigurationError(
                f"The agency address of target '{target_id}' (vnpost) is not valid: {exc.errors()[0]['msg']}."
            ) from None
    client = VNPostClient(
        base_url=settings.base_url,
        username=settings.username,
        password=settings.password,
        customer_code=settings.customer_code,
        timeout_seconds=settings.timeout_seconds,
    )
    return VNPostAdapter(
        target_id,
        client,
        agency=agency,
        service_name=settings.service_name,
        poll_after=settings.poll_after,
        poll_interval=settings.poll_interval,
        callback_token=settings.callback_token,
        reorder_window=settings.reorder_window,
    )
