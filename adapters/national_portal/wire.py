"""Request and reply bodies of the national portal's services, with its own field names."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.dossier import DossierProgress, DossierUpserted

__all__ = [
    "MAX_PROGRESS_STEPS",
    "SERVICE_SYNC_DOSSIER",
    "SERVICE_UPDATE_PROGRESS",
    "DossierSyncRequest",
    "PortalReply",
    "ProgressUpdateRequest",
    "TokenReply",
]

#: ``DongBoHoSoMC``: create (``isUpdating`` false) or update a dossier.
SERVICE_SYNC_DOSSIER = "DongBoHoSoMC"
#: ``CapNhatTienDoHoSoMC``: add processing steps.
SERVICE_UPDATE_PROGRESS = "CapNhatTienDoHoSoMC"
#: The portal takes at most this many progress steps per call.
MAX_PROGRESS_STEPS = 10


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body: fields the source did not set are left out, explicit nulls are kept."""
        return self.model_dump(mode="json", exclude_unset=True)


class DossierSyncRequest(_Request):
    """Body of ``DongBoHoSoMC``."""

    isUpdating: bool
    data: list[DossierUpserted] = Field(min_length=1)


class ProgressUpdateRequest(_Request):
    """Body of ``CapNhatTienDoHoSoMC``."""

    data: list[DossierProgress] = Field(min_length=1, max_length=MAX_PROGRESS_STEPS)


class PortalReply(BaseModel):
    """Every service answers HTTP 200 with ``error_code`` 0 (done) or -1 (refused, see ``message``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    error_code: int
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.error_code == 0


class TokenReply(BaseModel):
    """OAuth2 client-credentials token answer of the WSO2 gateway."""

    model_config = ConfigDict(extra="allow", frozen=True)

    access_token: str = Field(min_length=1)
    token_type: str = "Bearer"  # noqa: S105 - the token scheme, not a secret
    expires_in: float = Field(default=3600, gt=0)
