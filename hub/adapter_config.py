"""A target's ``config:`` (route file) read into the adapter's own pydantic model.

Each adapter declares its settings as a subclass of :class:`AdapterConfig` with the field types below
and builds itself from ``MyConfig.read(target_id, config)``. A missing, misspelt or malformed setting
stops the hub at start with one sentence naming the target and every problem, instead of each adapter
parsing a dict by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError

from hub.errors import ConfigurationError
from hub.routing import parse_duration

__all__ = ["AdapterConfig", "BaseUrl", "Duration", "DurationOrOff", "Text"]


def _duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a duration; write it like 500ms, 10s, 1m or 1h")  # noqa: TRY004
    return parse_duration(value)


def _duration_or_off(value: Any) -> float:
    return 0.0 if value in (0, "0", "0s", "off") else _duration(value)


def _base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


#: A positive duration: ``500ms``, ``10s``, ``1m``, ``1h`` or a number of seconds.
Duration = Annotated[float, BeforeValidator(_duration)]
#: A duration, or 0 / ``off`` for "never" (a loop that is switched off).
DurationOrOff = Annotated[float, BeforeValidator(_duration_or_off)]
#: An http(s) URL, without its trailing slash.
BaseUrl = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_base_url)]
#: A non-empty string, spaces around it removed (a client id, a secret from ``${VAR}``).
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class AdapterConfig(BaseModel):
    """The settings of one adapter. Unknown keys are refused: a misspelt setting would otherwise be
    silently replaced by its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The ``adapter:`` name, for the sentences.
    adapter: ClassVar[str] = "adapter"

    @classmethod
    def read(cls, target_id: str, config: Mapping[str, Any]) -> Self:
        """The settings of ``target_id``; :class:`ConfigurationError` naming every problem otherwise."""
        try:
            return cls.model_validate(dict(config))
        except ValidationError as exc:
            problems = "; ".join(_problem(error) for error in exc.errors())
            known = ", ".join(cls.model_fields)
            raise ConfigurationError(
                f"The settings (config:) of target '{target_id}' ({cls.adapter}) are not usable: {problems}. "
                f"Fix the route file (the settings it takes: {known})."
            ) from None


def _problem(error: Any) -> str:
    key = ".".join(str(part) for part in error.get("loc", ())) or "config"
    if error.get("type") == "missing":
        return f"{key} is required"
    if error.get("type") == "extra_forbidden":
        return f"{key} is not a setting of this adapter"
    return f"{key} {str(error.get('msg', 'is not valid')).removeprefix('Value error, ')}"
