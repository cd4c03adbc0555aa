"""The hub's adapter for a payment platform (the national portal's platform or a bank gateway).

Answers two request-reply types:

* ``payment.init`` – records the payment in the hub's ledger (so the result callback can be checked
  against it), sends a signed INIT and returns the payment page (UrlThanhToan) and MaThamChieu;
* ``payment.refund`` – sends a signed REFUND for a paid payment whose service was not performed.

Both are idempotent: MaThamChieu and MaHoanTien are derived from the request's id, which stays the
same when RabbitMQ gives a request to a second worker. The reconciler (:mod:`adapters.payment.reconcile`) also
uses :meth:`PaymentPlatformAdapter.query` and :meth:`PaymentPlatformAdapter.get_bill`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from adapters.payment.client import PaymentPlatformClient
from adapters.payment.ledger import PaymentLedger
from adapters.payment.wire import BillReply, PaymentResult
from hub.plugin import (
    AdapterConfig,
    BaseUrl,
    ConfigurationError,
    Duration,
    DurationOrOff,
    Envelope,
    PermanentDeliveryError,
    RequestContext,
    Secret,
    Text,
)
from schemas.payments import PaymentInit, PaymentRefund

if TYPE_CHECKING:
    from adapters.payment.ledger import Payment
    from hub.plugin import HubContext


__all__ = ["PaymentPlatformAdapter", "PaymentTiming", "create_adapter"]

TYPE_INIT = "payment.init"
TYPE_REFUND = "payment.refund"
_ModelT = TypeVar("_ModelT", bound=BaseModel)
#: A refund is refused when the dossier's latest state says the service was performed.
_PERFORMED_STATUSES = frozenset({9, 10})


class PaymentTiming:
    """When the reconciler asks about a payment that got no result callback (from the target's settings)."""

    def __init__(self, *, query_after: float, query_every: float, give_up_after: float, interval: float) -> None:
        self.query_after = timedelta(seconds=query_after)
        self.query_every = timedelta(seconds=query_every)
        self.give_up_after = timedelta(seconds=give_up_after)
        #: How often the ingress process runs a reconciliation pass (0: only `hub payments reconcile`).
        self.interval = interval


class PaymentPlatformAdapter:
    """Request adapter of one partner account (MaDoiTac) at a payment platform."""

    #: What ``check()`` proves (``hub doctor``).
    check_description = "a signed QUERY was answered (the platform accepts the partner signature)"

    name: str = "payment_platform"

    def __init__(
        self,
        target_id: str,
        client: PaymentPlatformClient,
        *,
        timing: PaymentTiming,
        description: str,
    ) -> None:
        self.target_id = target_id
        self.client = client
        self.timing = timing
        self._description = description
        self._ledger: PaymentLedger | None = None
        self._context: HubContext | None = None

    @property
    def partner_code(self) -> str:
        return self.client.partner_code

    def bind(self, context: HubContext) -> None:
        """Called by the core after the factory built it: the ledger lives in the hub's database."""
        self._context = context
        self._ledger = PaymentLedger(context.engine)

    @property
    def ledger(self) -> PaymentLedger:
        if self._ledger is None:
            raise ConfigurationError(
                f"The payment adapter of target '{self.target_id}' has no ledger; build it with Hub.build_adapter."
            )
        return self._ledger

    # ------------------------------------------------------------------ request-reply

    async def request(self, envelope: Envelope, context: RequestContext) -> dict[str, Any]:
        if envelope.type == TYPE_INIT:
            return await self._init(envelope, _parse(PaymentInit, envelope))
        if envelope.type == TYPE_REFUND:
            return await self._refund(envelope, _parse(PaymentRefund, envelope))
        raise PermanentDeliveryError(
            f"Target '{self.target_id}' (payment platform) answers {TYPE_INIT} and {TYPE_REFUND}, not "
            f"'{envelope.type}'. Fix the route that sends it there."
        )

    async def _init(self, envelope: Envelope, order: PaymentInit) -> dict[str, Any]:
        ledger = self.ledger
        open_same = [
            p
            for p in await ledger.for_dossier(order.MaHoSo)
            if p.amount == order.SoTien and p.target == self.target_id and p.request_id != envelope.id
        ]
        paid = [p for p in open_same if p.state == "paid"]
        if paid:
            raise PermanentDeliveryError(
                f"Dossier {order.MaHoSo} already has a paid payment of {order.SoTien} VND ({paid[0].reference}, "
                f"MaGiaoDich {paid[0].transaction_id}); the hub does not start a second one for the same amount."
            )
        waiting = [p for p in open_same if p.state == "initiated" and p.payment_url]
        if waiting:  # the citizen clicked twice: give the same payment page again
            return _init_answer(waiting[-1])
        reference = f"{order.MaHoSo}-P{envelope.id.replace('-', '')[:8].upper()}"
        description = order.ThongTinGiaoDich or self._description.format(MaHoSo=order.MaHoSo)
        payment, _ = await ledger.open_order(
            reference=reference,
            target=self.target_id,
            partner_code=self.partner_code,
            dossier_code=order.MaHoSo,
            amount=order.SoTien,
            currency=order.MaTienTe,
            fee_items=[line.model_dump(mode="json", exclude_none=True) for line in order.DanhSachLePhi],
            description=description,
            request_id=envelope.id,
            source=envelope.source,
            check_after=self.timing.query_after,
        )
        if payment.payment_url:
            return _init_answer(payment)
        if payment.state != "initiated":
            raise PermanentDeliveryError(
                f"Payment {payment.reference} of dossier {order.MaHoSo} was refused earlier: {payment.last_error}"
            )
        try:
            reply = await self.client.init(
                reference=payment.reference,
                amount=payment.amount,
                currency=payment.currency,
                description=description,
                return_url=order.UrlTraVe,
            )
        except PermanentDeliveryError as exc:
            await ledger.mark_unpaid(payment.reference, "failed", exc.reason)
            raise
        url = reply.UrlThanhToan or ""
        await ledger.set_payment_url(payment.reference, url)
        return {
            "MaHoSo": payment.dossier_code,
            "MaThamChieu": payment.reference,
            "UrlThanhToan": url,
            "SoTien": payment.amount,
            "MaTienTe": payment.currency,
        }

    async def _refund(self, envelope: Envelope, ask: PaymentRefund) -> dict[str, Any]:
        ledger = self.ledger
        payment = await self._payment_to_refund(ask)
        refund_reference = f"R{envelope.id.replace('-', '')[:15].upper()}"
        if payment.state == "refunded":
            if payment.refund_reference == refund_reference:
                return _refund_answer(payment)
            raise PermanentDeliveryError(
                f"Payment {payment.reference} of dossier {ask.MaHoSo} was already refunded "
                f"({payment.refund_amount} VND, MaHoanTien {payment.refund_reference})."
            )
        if payment.state == "refunding" and payment.refund_reference != refund_reference:
            raise PermanentDeliveryError(
                f"A refund of payment {payment.reference} ({payment.refund_reference}) is already under way; "
                "wait for it before asking again."
            )
        if self._context is not None:
            state = await self._context.latest_state(ask.MaHoSo)
            status = state.payload.get("TrangThaiHoSo") if state is not None else None
            if status in _PERFORMED_STATUSES:
                raise PermanentDeliveryError(
                    f"Dossier {ask.MaHoSo} was processed (TrangThaiHoSo {status} in the "
                    "hub's latest state), so its fee is not refunded. A refund is for a service that was not "
                    "performed; send the dossier's new state first if that is wrong."
                )
        amount = ask.SoTien if ask.SoTien is not None else payment.amount
        if amount > payment.amount:
            raise PermanentDeliveryError(
                f"A refund of {amount} VND is more than payment {payment.reference} ({payment.amount} VND)."
            )
        if payment.state == "paid" and not await ledger.begin_refund(
            payment.reference, refund_reference=refund_reference, amount=amount, reason=ask.LyDo
        ):
            raise PermanentDeliveryError(
                f"Payment {payment.reference} changed while the refund was being prepared; ask again."
            )
        try:
            await self.client.refund(
                reference=payment.reference,
                transaction_id=payment.transaction_id or "",
                refund_reference=refund_reference,
                amount=amount,
                currency=payment.currency,
                reason=ask.LyDo,
            )
        except PermanentDeliveryError as exc:
            await ledger.finish_refund(payment.reference, refunded=False, error=exc.reason)
            raise
        await ledger.finish_refund(payment.reference, refunded=True)
        refunded = await ledger.get(payment.reference)
        return _refund_answer(refunded or payment)

    async def _payment_to_refund(self, ask: PaymentRefund) -> Payment:
        payments = [p for p in await self.ledger.for_dossier(ask.MaHoSo) if p.target == self.target_id]
        if ask.MaThamChieu is not None:
            chosen = [p for p in payments if p.reference == ask.MaThamChieu]
            if not chosen:
                raise PermanentDeliveryError(
                    f"Dossier {ask.MaHoSo} has no payment {ask.MaThamChieu} through target '{self.target_id}'."
                )
            payment = chosen[0]
        else:
            settled = [p for p in payments if p.transaction_id is not None]
            if not settled:
                raise PermanentDeliveryError(
                    f"Dossier {ask.MaHoSo} has no paid payment through target '{self.target_id}', so there is "
                    "nothing to refund."
                )
            if len(settled) > 1:
                refs = ", ".join(p.reference for p in settled)
                raise PermanentDeliveryError(
                    f"Dossier {ask.MaHoSo} has several paid payments ({refs}); name the one to refund in MaThamChieu."
                )
            payment = settled[0]
        if payment.transaction_id is None:
            raise PermanentDeliveryError(
                f"Payment {payment.reference} of dossier {ask.MaHoSo} was never paid ({payment.state}); "
                "there is nothing to refund."
            )
        return payment

    # ------------------------------------------------------------------ used by the reconciler

    async def query(self, reference: str) -> PaymentResult:
        return await self.client.query(reference)

    async def get_bill(self, reference: str, transaction_id: str) -> BillReply:
        return await self.client.get_bill(reference, transaction_id)

    def verify_result(self, raw: Mapping[str, Any]) -> bool:
        """Whether a result callback carries this partner's valid MaXacThuc (constant-time compare)."""
        return self.client.verify("RESULT", raw)

    async def check(self) -> None:
        """QUERY a reference that does not exist: proves the platform answers and accepts the signature."""
        await self.client.query("LGSP-HEALTHCHECK")

    async def aclose(self) -> None:
        await self.client.aclose()


def _init_answer(payment: Payment) -> dict[str, Any]:
    return {
        "MaHoSo": payment.dossier_code,
        "MaThamChieu": payment.reference,
        "UrlThanhToan": payment.payment_url,
        "SoTien": payment.amount,
        "MaTienTe": payment.currency,
    }


def _refund_answer(payment: Payment) -> dict[str, Any]:
    return {
        "MaHoSo": payment.dossier_code,
        "MaThamChieu": payment.reference,
        "MaGiaoDich": payment.transaction_id,
        "MaHoanTien": payment.refund_reference,
        "SoTien": payment.refund_amount,
        "MaTienTe": payment.currency,
        "TrangThai": payment.state,
    }


def _parse(model: type[_ModelT], envelope: Envelope) -> _ModelT:
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise PermanentDeliveryError(f"Request {envelope.id} ({envelope.type}) is not valid: {problems}.") from None


class PaymentConfig(AdapterConfig):
    """Settings of a ``payment_platform`` target (``config:`` in the route file)."""

    adapter: ClassVar[str] = "payment_platform"

    base_url: BaseUrl
    partner_code: Text  # MaDoiTac
    secret: Secret  # the partner secret: reference an environment variable
    api_path: Text = "/api/thanh-toan"
    timeout_seconds: Duration = 10.0
    #: ThongTinGiaoDich when the request has none; may use {MaHoSo}.
    description: Text = "Thanh toan phi, le phi ho so {MaHoSo}"
    query_after: Duration = 600.0  # first QUERY of a payment without result
    query_every: Duration = 300.0
    give_up_after: Duration = 86_400.0  # then the payment is marked expired
    #: How often the ingress runs a reconciliation pass; 0 = only ``hub payments reconcile``.
    reconcile_interval: DurationOrOff = 60.0


def create_adapter(target_id: str, config: Mapping[str, Any]) -> PaymentPlatformAdapter:
    """Build the adapter of target ``target_id`` from its settings (:class:`PaymentConfig`)."""
    settings = PaymentConfig.read(target_id, config)
    client = PaymentPlatformClient(
        base_url=settings.base_url,
        partner_code=settings.partner_code,
        secret=settings.secret,
        api_path=settings.api_path,
        timeout_seconds=settings.timeout_seconds,
    )
    timing = PaymentTiming(
        query_after=settings.query_after,
        query_every=settings.query_every,
        give_up_after=settings.give_up_after,
        interval=settings.reconcile_interval,
    )
    return PaymentPlatformAdapter(target_id, client, timing=timing, description=settings.description)
