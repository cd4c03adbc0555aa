"""The canonical identity of a person (or organisation account) who logged in through the hub.

A ``mode: login`` route names ``identity.login/v1``: whatever the provider (VNeID) says is mapped
to this model and validated before the hub signs it into an identity assertion.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.population import BirthDate, IdNumber

__all__ = ["AccountType", "Identity"]

AccountType = Literal["citizen", "organisation"]


class Identity(BaseModel):
    """Who logged in. Field names follow the national systems (``shared/domain.md``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    SoDinhDanh: IdNumber = Field(description="12-digit personal ID number of the person who logged in.")
    HoVaTen: str = Field(min_length=1, max_length=200, description="Full name, NFC.")
    NgayThangNamSinh: BirthDate | None = Field(default=None, description="Date of birth, yyyyMMdd.")
    LoaiTaiKhoan: AccountType = Field(description="citizen (công dân) or organisation (tổ chức) account.")
    loa: int = Field(ge=1, le=4, description="Level of assurance of the account/login (VNeID: 1 or 2).")
    provider: str = Field(description="The identity provider, e.g. vneid.")
    sub: str = Field(min_length=1, max_length=255, description="The provider's subject identifier.")
