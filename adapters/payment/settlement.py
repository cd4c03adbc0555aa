"""From a payment result (a callback, or a QUERY answer) to its one effect.

A result is believed only when its MaXacThuc is right, it names a payment the hub asked for, and its
amount and currency are the payment's. A success (MaLoi "00") settles the payment once — the ledger's
unique MaGiaoDich and conditional update make a duplicated or replayed callback a no-op — and then:

* ``payment.completed`` goes to the targets of its routes (the one-stop system);
* the dossier's newest state the hub holds (its latest ``dossier.upserted``) is sent again with
  ``DuocThanhToanTrucTuyen`` = 1 (and ``TrangThaiHoSo`` 6 "awaiting fee payment" moved to 4
  "processing"), so the national portal shows the dossier as paid online. The re-sent state is
  stored after the one it was made from; should the one-stop system's newer state have been stored
  in between, the re-sent older state would be the newest, so it is made again from that newer state
  (see :meth:`PaymentSettlement.reflect_state`);
* the receipt is fetched with GET_BILL and sent on as ``payment.receipt``.

Every result, taken or rejected, is recorded in ``payment_callbacks`` with its reason. Each
follow-up step is idempotent and recorded on the payment, so the reconciler finishes what a crash
interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from adapters.payment.adapter import PaymentPlatformAdapter
from adapters.payment.ledger import Payment, PaymentLedger, PaymentState
from adapters.payment.wire import (
    ANSWER_ALREADY_CONFIRMED,
    ANSWER_AMOUNT_MISMATCH,
    ANSWER_BAD_SIGNATURE,
    ANSWER_CURRENCY_MISMATCH,
    ANSWER_ERROR,
    ANSWER_OK,
    ANSWER_UNKNOWN_REFERENCE,
    RESULT_CANCELLED,
    RESULT_EXPIRED,
    RESULT_FAILED,
    CallbackAnswer,
    PaymentResult,
    platform_time,
)
from hub.plugin import DeliveryError, DossierState, HubContext, HubError, OriginatedMessage

__all__ = ["NOT_SENT", "PaymentSettlement", "ResultDecision"]

log = structlog.get_logger(__name__)

#: Stored instead of a message id when there was nothing to send (no route, no dossier state).
NOT_SENT = "none"
_AWAITING_FEE_PAYMENT = 6
_PROCESSING = 4
#: How often a paid state is made again from a newer one-stop state that slipped in before it was stored.
_MAX_REDERIVATIONS = 5
_UNPAID_STATES = {RESULT_CANCELLED: PaymentState.CANCELLED, RESULT_FAILED: PaymentState.FAILED}

_ANSWER_TEXT = {
    ANSWER_OK: "Đã nhận kết quả thanh toán",
    ANSWER_UNKNOWN_REFERENCE: "Không tìm thấy giao dịch (MaThamChieu)",
    ANSWER_ALREADY_CONFIRMED: "Giao dịch đã được xác nhận trước đó",
    ANSWER_AMOUNT_MISMATCH: "Số tiền không khớp với yêu cầu thanh toán",
    ANSWER_CURRENCY_MISMATCH: "Loại tiền không khớp với yêu cầu thanh toán",
    ANSWER_BAD_SIGNATURE: "Chữ ký (MaXacThuc) không hợp lệ",
    ANSWER_ERROR: "Không đọc được bản tin",
}


@dataclass(frozen=True, slots=True)
class ResultDecision:
    """What the hub made of one result: ``outcome`` accepted / rejected / recorded, and the answer."""

    outcome: str
    answer_code: str
    reason: str | None = None
    detail: str | None = None
    payment: Payment | None = None

    @property
    def answer(self) -> CallbackAnswer:
        return CallbackAnswer(MaLoi=self.answer_code, MoTaLoi=_ANSWER_TEXT[self.answer_code])


class PaymentSettlement:
    """Checks results against the ledger and carries out a success's effects."""

    def __init__(self, context: HubContext, adapters: Mapping[str, PaymentPlatformAdapter]) -> None:
        self.context = context
        self.ledger = PaymentLedger(context.engine)
        self.by_target = dict(adapters)
        self.by_partner = {adapter.partner_code: adapter for adapter in adapters.values()}

    # ------------------------------------------------------------------ callbacks

    async def handle_callback(self, body: bytes) -> ResultDecision:
        """Check and apply one result callback; the decision's answer goes back to the platform."""
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError:
            raw = None
        if not isinstance(raw, dict):
            return await self._reject(
                "callback", None, "malformed", ANSWER_ERROR,
                "A payment callback was not a JSON object; it was answered 99. Ask the platform what it sends.",
            )  # fmt: skip
        try:
            result = PaymentResult.model_validate(raw)
        except ValidationError as exc:
            fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
            return await self._reject(
                "callback", _partial(raw), "malformed", ANSWER_ERROR,
                f"A payment callback for MaThamChieu {raw.get('MaThamChieu')!r} lacks or garbles {fields}; "
                "it was answered 99 and had no effect. Amounts must be integers in VND.",
            )  # fmt: skip
        adapter = self.by_partner.get(result.MaDoiTac)
        if adapter is None:
            return await self._reject(
                "callback", result, "unknown_partner", ANSWER_BAD_SIGNATURE,
                f"A payment callback names MaDoiTac {result.MaDoiTac!r}, which no payment target of the hub has "
                "(partner_code in the route files); it was refused with 97 because it cannot be verified.",
            )  # fmt: skip
        if not adapter.verify_result(raw):
            return await self._reject(
                "callback", result, "bad_signature", ANSWER_BAD_SIGNATURE,
                f"The callback for payment {result.MaThamChieu} has a wrong MaXacThuc; it was refused (97) and "
                "had no effect. If genuine callbacks fail like this, the partner secret in settings is not the "
                "platform's; otherwise someone is sending forged callbacks.",
            )  # fmt: skip
        return await self.accept_result(result, channel="callback")

    # ------------------------------------------------------------------ verified results

    async def accept_result(self, result: PaymentResult, *, channel: str) -> ResultDecision:
        """Apply a result whose signature was verified (a callback, or the answer to QUERY)."""
        payment = await self.ledger.get(result.MaThamChieu)
        if payment is None or payment.partner_code != result.MaDoiTac:
            return await self._reject(
                channel, result, "unknown_reference", ANSWER_UNKNOWN_REFERENCE,
                f"A payment result names MaThamChieu {result.MaThamChieu}, which the hub never sent to partner "
                f"{result.MaDoiTac}; it was refused (01) and had no effect.",
            )  # fmt: skip
        if result.paid and result.MaGiaoDich:
            if payment.transaction_id == result.MaGiaoDich:
                return await self._reject(
                    channel, result, "replayed_transaction", ANSWER_ALREADY_CONFIRMED,
                    f"The result for payment {payment.reference} repeats MaGiaoDich {result.MaGiaoDich}, which "
                    "the hub already accepted; it had no further effect (answered 02).",
                    payment,
                )  # fmt: skip
            if payment.transaction_id is not None:
                return await self._reject(
                    channel, result, "second_transaction", ANSWER_ALREADY_CONFIRMED,
                    f"Payment {payment.reference} (dossier {payment.dossier_code}) was already paid by MaGiaoDich "
                    f"{payment.transaction_id}, and a second successful transaction {result.MaGiaoDich} arrived. "
                    "The citizen may have paid twice: check with the platform and refund the second one there.",
                    payment,
                )  # fmt: skip
        if result.MaTienTe != payment.currency:
            return await self._reject(
                channel, result, "currency_mismatch", ANSWER_CURRENCY_MISMATCH,
                f"The result for payment {payment.reference} is in {result.MaTienTe}, but the hub asked for "
                f"{payment.currency}; it was refused (05). Do not treat dossier {payment.dossier_code} as paid; "
                "ask the platform what happened.",
                payment,
            )  # fmt: skip
        if result.SoTien != payment.amount:
            return await self._reject(
                channel, result, "amount_mismatch", ANSWER_AMOUNT_MISMATCH,
                f"The result for payment {payment.reference} says {result.SoTien} VND, but the hub asked for "
                f"{payment.amount} VND; it was refused (04). Do not treat dossier {payment.dossier_code} as paid; "
                "ask the platform what happened.",
                payment,
            )  # fmt: skip
        if not result.paid:
            return await self._not_paid(result, payment, channel)
        if not result.MaGiaoDich:
            return await self._reject(
                channel, result, "malformed", ANSWER_ERROR,
                f"A successful result for payment {payment.reference} has no MaGiaoDich; it was answered 99.",
                payment,
            )  # fmt: skip
        outcome = await self.ledger.settle(
            payment.reference,
            transaction_id=result.MaGiaoDich,
            bank_code=result.MaNganHang,
            transaction_time=result.ThoiGianGD,
            settled_by=channel if channel == "callback" else "reconciliation",
        )
        if outcome == "transaction_reused":
            other = await self.ledger.by_transaction(result.MaGiaoDich)
            where = other.reference if other is not None else "another payment"
            return await self._reject(
                channel, result, "replayed_transaction", ANSWER_ALREADY_CONFIRMED,
                f"The result for payment {payment.reference} carries MaGiaoDich {result.MaGiaoDich}, which "
                f"already paid {where}; it was refused (02) and had no effect.",
                payment,
            )  # fmt: skip
        if outcome == "already_settled":
            fresh = await self.ledger.get(payment.reference)
            return await self._reject(
                channel, result, "replayed_transaction", ANSWER_ALREADY_CONFIRMED,
                f"Another copy of the result for payment {payment.reference} (MaGiaoDich {result.MaGiaoDich}) "
                "was accepted at the same moment; this one had no effect (answered 02).",
                fresh,
            )  # fmt: skip
        await self.ledger.record_result(
            channel=channel, outcome="accepted", reason=None, detail=None, answer_code=ANSWER_OK,
            **_facts(result),
        )  # fmt: skip
        settled = await self.ledger.get(payment.reference) or payment
        log.info("payment_settled", reference=settled.reference, dossier=settled.dossier_code, channel=channel)
        try:
            await self.send_on(settled)
        except HubError as exc:  # the store is down, or a route's schema refuses the message
            # The payment is settled (that is what the platform needs to hear); reconciliation sends it on.
            log.warning("payment_send_on_deferred", reference=settled.reference, error=str(exc))
        return ResultDecision("accepted", ANSWER_OK, payment=await self.ledger.get(payment.reference) or settled)

    async def _not_paid(self, result: PaymentResult, payment: Payment, channel: str) -> ResultDecision:
        state = _UNPAID_STATES.get(result.MaLoi, PaymentState.EXPIRED if result.MaLoi == RESULT_EXPIRED else None)
        detail = (
            f"Payment {payment.reference} was not paid: MaLoi {result.MaLoi} ({result.MoTaLoi or 'no description'})."
        )
        if state is not None:
            await self.ledger.mark_unpaid(payment.reference, state, detail)
        await self.ledger.record_result(
            channel=channel, outcome="recorded", reason=f"not_paid_{result.MaLoi}", detail=detail,
            answer_code=ANSWER_OK, **_facts(result),
        )  # fmt: skip
        log.info("payment_not_paid", reference=payment.reference, ma_loi=result.MaLoi, channel=channel)
        return ResultDecision("recorded", ANSWER_OK, f"not_paid_{result.MaLoi}", detail, payment)

    async def _reject(
        self,
        channel: str,
        result: PaymentResult | dict[str, Any] | None,
        reason: str,
        answer: str,
        detail: str,
        payment: Payment | None = None,
    ) -> ResultDecision:
        facts = _facts(result) if isinstance(result, PaymentResult) else (result or {})
        await self.ledger.record_result(
            channel=channel, outcome="rejected", reason=reason, detail=detail, answer_code=answer, **facts
        )
        log.warning("payment_result_rejected", reason=reason, channel=channel, reference=facts.get("reference"))
        return ResultDecision("rejected", answer, reason, detail, payment)

    # ------------------------------------------------------------------ effects of a paid payment

    async def send_on(self, payment: Payment) -> None:
        """Originate ``payment.completed`` and the portal's dossier state, once each."""
        if payment.transaction_id is None:
            return
        if payment.completed_message_id is None:
            sent = await self.context.originate(
                message_type="payment.completed",
                payload=_completed_payload(payment),
                source=payment.target,
                idempotency_key=f"payment.completed:{payment.transaction_id}",
            )
            await self.ledger.set_completed_message(payment.reference, sent.id if sent else NOT_SENT)
        if payment.reflected_message_id is None:
            await self._reflect_to_portal(payment)

    async def _reflect_to_portal(self, payment: Payment) -> None:
        if await self._newest_reflection(payment) is not None:
            # Stored before but not recorded on the payment: the hub stopped in between, or another process
            # follows the payment up at this moment. Finish that reflection rather than add one.
            await self.ledger.set_reflected_message(payment.reference, await self._catch_up(payment))
            return
        state = await self.context.latest_state(payment.dossier_code)
        if state is None:
            log.warning(
                "payment_not_reflected",
                reference=payment.reference,
                dossier=payment.dossier_code,
                detail="The hub holds no dossier.upserted of this dossier, so it cannot send the portal its state "
                "with DuocThanhToanTrucTuyen=1; the one-stop system should send it.",
            )
            await self.ledger.set_reflected_message(payment.reference, NOT_SENT)
            return
        await self.ledger.set_reflected_message(payment.reference, await self.reflect_state(payment, state))

    async def reflect_state(self, payment: Payment, state: DossierState) -> str:
        """Send ``state`` again as paid; return the id of this payment's paid state that ends up newest.

        The paid state is stored after ``state`` was read. A one-stop state stored in between is newer than
        ``state``, yet older than the paid state, which the portal's latest-state ordering and the refund
        check take for the dossier's current state; so the paid state is then made again from that newer
        state (see :meth:`_catch_up`). A state stored after the paid one is simply newer and is left
        alone. Returns ``NOT_SENT`` when no route carries ``dossier.upserted``.
        """
        if await self._originate_reflection(payment, state, _reflection_key(payment, state.seq)) is None:
            return NOT_SENT
        return await self._catch_up(payment)

    async def _catch_up(self, payment: Payment) -> str:
        """Make the payment's newest paid state again while a newer state was stored between it and its source.

        Up to ``_MAX_REDERIVATIONS`` times; returns the id of the payment's newest paid state.
        """
        rederived = 0
        while True:
            reflection = await self._newest_reflection(payment)
            if reflection is None:  # the store lost it: nothing this pass can do
                return NOT_SENT
            derived_from = _derived_from(payment, reflection)
            if derived_from is None:  # stored by an older hub, whose key does not say from which state
                return reflection.message_id
            between = await self.context.dossier_states(
                payment.dossier_code, after_seq=derived_from, before_seq=reflection.seq
            )
            newer = next((state for state in between if not _is_reflection_of(payment, state)), None)
            if newer is None:
                return reflection.message_id
            if rederived == _MAX_REDERIVATIONS:
                log.warning(
                    "payment_reflection_outrun",
                    reference=payment.reference,
                    dossier=payment.dossier_code,
                    message_id=reflection.message_id,
                    detail=f"Dossier {payment.dossier_code} was paid, and its state with DuocThanhToanTrucTuyen=1 "
                    f"was made again {rederived} times, each time overtaken by a newer state from the one-stop "
                    f"system (the last is message {newer.message_id}). Until the dossier's next change, the portal "
                    f"and the refund check see the older state of message {reflection.message_id}: ask the "
                    "one-stop system to send the dossier again.",
                )
                return reflection.message_id
            log.info(
                "payment_reflection_rederived",
                reference=payment.reference,
                dossier=payment.dossier_code,
                stale_message_id=reflection.message_id,
                newer_message_id=newer.message_id,
            )
            # The key names the stale paid state too: a paid state made from ``newer`` that is older than the
            # stale one (another process made it) must not stand in for this one.
            key = f"{_reflection_key(payment, newer.seq)}:{reflection.seq}"
            if await self._originate_reflection(payment, newer, key) is None:
                return reflection.message_id
            rederived += 1

    async def _originate_reflection(
        self, payment: Payment, state: DossierState, idempotency_key: str
    ) -> OriginatedMessage | None:
        dossier = {**state.payload, "DuocThanhToanTrucTuyen": 1}
        if dossier.get("TrangThaiHoSo") == _AWAITING_FEE_PAYMENT:
            dossier["TrangThaiHoSo"] = _PROCESSING
        return await self.context.originate(
            message_type="dossier.upserted",
            payload=dossier,
            source=payment.target,
            idempotency_key=idempotency_key,
        )

    async def _newest_reflection(self, payment: Payment) -> DossierState | None:
        """The newest paid state of this payment in the store, if one was stored."""
        sent_by_target = await self.context.dossier_states(payment.dossier_code, source=payment.target)
        return next((state for state in sent_by_target if _is_reflection_of(payment, state)), None)

    async def fetch_receipt(self, payment: Payment) -> None:
        """GET_BILL, then ``payment.receipt``; a platform failure is logged and tried again next pass."""
        if payment.transaction_id is None or payment.receipt_message_id is not None:
            return
        receipt = payment.receipt
        if receipt is None:
            adapter = self.by_target.get(payment.target)
            if adapter is None:
                return
            try:
                bill = await adapter.get_bill(payment.reference, payment.transaction_id)
            except DeliveryError as exc:
                log.warning("payment_receipt_not_fetched", reference=payment.reference, reason=exc.reason)
                await self.ledger.note_error(payment.reference, f"GET_BILL failed: {exc.reason}")
                return
            receipt = {
                "SoBienLai": bill.SoBienLai,
                "KyHieuBienLai": bill.KyHieuBienLai,
                "NgayBienLai": bill.NgayBienLai,
                "UrlBienLai": bill.UrlBienLai,
            }
            await self.ledger.set_receipt(payment.reference, receipt)
        sent = await self.context.originate(
            message_type="payment.receipt",
            payload={
                "MaHoSo": payment.dossier_code,
                "MaThamChieu": payment.reference,
                "MaGiaoDich": payment.transaction_id,
                "SoTien": payment.amount,
                **{k: v for k, v in receipt.items() if v is not None},
            },
            source=payment.target,
            idempotency_key=f"payment.receipt:{payment.transaction_id}",
        )
        await self.ledger.set_receipt_message(payment.reference, sent.id if sent else NOT_SENT)


def _reflection_key(payment: Payment, derived_from: int | None = None) -> str:
    """The idempotency key of a paid state of ``payment``, made from the dossier state ``derived_from``.

    ``payment.reflected:<MaGiaoDich>:<seq of that state>``, and ``:<seq of the paid state it replaces>``
    after it for one made again. Hub versions before this stored ``payment.reflected:<MaGiaoDich>`` only.
    """
    key = f"payment.reflected:{payment.transaction_id}"
    return key if derived_from is None else f"{key}:{derived_from}"


def _is_reflection_of(payment: Payment, state: DossierState) -> bool:
    key = _reflection_key(payment)
    return state.source == payment.target and (
        state.idempotency_key == key or (state.idempotency_key or "").startswith(f"{key}:")
    )


def _derived_from(payment: Payment, reflection: DossierState) -> int | None:
    """The ``seq`` of the state ``reflection`` was made from; None for a key without it (an older hub)."""
    rest = (reflection.idempotency_key or "").removeprefix(f"{_reflection_key(payment)}:")
    seq = rest.split(":", 1)[0]
    return int(seq) if seq.isdigit() else None


def _completed_payload(payment: Payment) -> dict[str, Any]:
    return {
        "MaHoSo": payment.dossier_code,
        "MaThamChieu": payment.reference,
        "MaGiaoDich": payment.transaction_id,
        "MaNganHang": payment.bank_code,
        "SoTien": payment.amount,
        "MaTienTe": payment.currency,
        "ThoiGianGD": payment.transaction_time or platform_time(payment.settled_at),
        "ThongTinGiaoDich": payment.description,
        "DanhSachLePhi": payment.fee_items,
        "KenhXacNhan": "callback" if payment.settled_by == "callback" else "reconciliation",
    }


def _facts(result: PaymentResult) -> dict[str, Any]:
    return {
        "reference": result.MaThamChieu,
        "transaction_id": result.MaGiaoDich,
        "partner_code": result.MaDoiTac,
        "result_code": result.MaLoi,
        "amount": result.SoTien,
        "currency": result.MaTienTe,
    }


def _partial(raw: dict[str, Any]) -> dict[str, Any]:
    """The readable facts of a callback that did not parse (for the record)."""

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) else None

    amount = raw.get("SoTien")
    return {
        "reference": text("MaThamChieu"),
        "transaction_id": text("MaGiaoDich"),
        "partner_code": text("MaDoiTac"),
        "result_code": text("MaLoi"),
        "amount": amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        "currency": text("MaTienTe"),
    }
