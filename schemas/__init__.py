"""Canonical message schemas, by the name routes use (``schema:`` in ``routes/*.yaml``)."""

from __future__ import annotations

from pydantic import BaseModel

from schemas.dossier import DossierProgress, DossierStatus, DossierUpserted
from schemas.identity import Identity
from schemas.payments import PaymentCompleted, PaymentInit, PaymentReceipt, PaymentRefund
from schemas.population import PopulationLookup, PopulationVerify
from schemas.postal import PostalCancel, PostalOrder, PostalStatusChanged

__all__ = [
    "SCHEMAS",
    "DossierProgress",
    "DossierStatus",
    "DossierUpserted",
    "Identity",
    "PaymentCompleted",
    "PaymentInit",
    "PaymentReceipt",
    "PaymentRefund",
    "PopulationLookup",
    "PopulationVerify",
    "PostalCancel",
    "PostalOrder",
    "PostalStatusChanged",
    "json_schemas",
]

#: schema name -> pydantic model. The name is what a route's ``schema:`` refers to.
SCHEMAS: dict[str, type[BaseModel]] = {
    "dossier.upserted/v1": DossierUpserted,
    "dossier.progress/v1": DossierProgress,
    "population.lookup/v1": PopulationLookup,
    "population.verify/v1": PopulationVerify,
    "identity.login/v1": Identity,
    "payment.init/v1": PaymentInit,
    "payment.refund/v1": PaymentRefund,
    "payment.completed/v1": PaymentCompleted,
    "payment.receipt/v1": PaymentReceipt,
    "postal.order/v1": PostalOrder,
    "postal.cancel/v1": PostalCancel,
    "postal.status_changed/v1": PostalStatusChanged,
}


def json_schemas() -> dict[str, dict[str, object]]:
    """JSON Schema of every canonical message, as published in ``schemas/json/``."""
    return {name: model.model_json_schema() for name, model in SCHEMAS.items()}
