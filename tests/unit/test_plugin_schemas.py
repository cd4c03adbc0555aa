"""A plugin brings its own message types (Plugin.schemas): route files may name them, and the hub checks
messages against them like the canonical ones; a name already taken stops the hub with a sentence."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from hub.bootstrap import load_plugins, schema_registry
from hub.errors import ConfigurationError
from hub.plugin import Plugin


class BirthRegistered(BaseModel):
    model_config = ConfigDict(extra="forbid")

    MaHoSo: str
    SoDangKy: str


def test_a_plugin_s_schema_joins_the_canonical_ones() -> None:
    plugin = Plugin(name="civil_registry", schemas={"civil_registry.birth_registered/v1": BirthRegistered})
    registry = schema_registry([*load_plugins(), plugin])
    assert registry["civil_registry.birth_registered/v1"] is BirthRegistered
    assert "dossier.upserted/v1" in registry


def test_a_schema_name_already_taken_is_refused() -> None:
    plugin = Plugin(name="copycat", schemas={"dossier.upserted/v1": BirthRegistered})
    with pytest.raises(ConfigurationError, match=r"The plugin 'copycat' brings the schema 'dossier\.upserted/v1'"):
        schema_registry([plugin])
