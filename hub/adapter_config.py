"""A target's ``config:`` (route file) read into the adapter's own pydantic model.

Each adapter declares its settings as a subclass of :class:`AdapterConfig` with the field types below
and builds itself from ``MyConfig.read(target_id, config)``. A missing, misspelt or malformed setting
stops the hub at start with one sentence naming the target and every problem, instead of each adapter
parsing a dict by hand.

A credential is declared :data:`Secret`. When the hub builds an adapter (``Hub.build_adapter``, at start for
every target) it does so under :func:`sample_secrets_refused`, and a Secret that :func:`looks_like_sample`
(the route files' defaults for the mocks) is refused with the variable to set; ``hub run --demo`` and
``HUB_ALLOW_SAMPLE_REFUSALS`` let them through. A factory called outside the hub (a plugin's own tests) is
not checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)

from hub.errors import ConfigurationError
from hub.routing import parse_duration

__all__ = [
    "AdapterConfig",
    "BaseUrl",
    "Duration",
    "DurationOrOff",
    "SampleSecretError",
    "Secret",
    "Text",
    "looks_like_sample",
    "sample_secrets_refused",
]

#: What a sample value starts with: the route files' defaults for the mocks, .env.example's SAMPLE-…, and
#: the usual placeholders.
_SAMPLE_PREFIXES = ("sample", "mock-", "changeme", "change_me", "replace-", "replace_me", "example")
#: What a sample value contains anywhere (VNeID's ``mock-vneid-secret-not-real``, the tests' ``…-not-a-secret``).
_SAMPLE_MARKS = ("not-real", "not-a-secret", "change-me")


@dataclass(frozen=True, slots=True)
class _SecretPolicy:
    refused: bool = False
    #: setting → the environment variable its ``${VAR}`` reads, for the sentence.
    variables: Mapping[str, str] = field(default_factory=dict)


#: How the adapter being built treats sample secrets; set by the hub around its factories.
_SECRET_POLICY: ContextVar[_SecretPolicy | None] = ContextVar("secret_policy", default=None)


class SampleSecretError(ConfigurationError):
    """A target's :data:`Secret` is empty, or a sample where the hub refuses samples."""


def looks_like_sample(value: str) -> bool:
    """True for an empty value and one copied from a sample: it starts with ``sample``, ``mock-``,
    ``changeme``, ``replace-`` or ``example``, or contains ``not-real``, ``not-a-secret`` or ``change-me``
    (case ignored). Anyone who reads the repository knows such a value."""
    lowered = value.strip().lower()
    return not lowered or lowered.startswith(_SAMPLE_PREFIXES) or any(mark in lowered for mark in _SAMPLE_MARKS)


@contextmanager
def sample_secrets_refused(refused: bool = True, *, variables: Mapping[str, str] | None = None) -> Iterator[None]:
    """Within the block, :meth:`AdapterConfig.read` refuses a :data:`Secret` that looks like a sample
    (``refused`` False lets them through, as the demo does). ``variables`` (setting → the environment
    variable it is read from) names what to set in the refusal."""
    token = _SECRET_POLICY.set(_SecretPolicy(refused, dict(variables or {})))
    try:
        yield
    finally:
        _SECRET_POLICY.reset(token)


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


#: The end of a Secret's refusal (how :meth:`AdapterConfig.read` tells it from other problems).
_SAMPLE_REFUSAL = "holds a sample or empty value"


def _secret(value: str, info: ValidationInfo) -> str:
    refused = isinstance(info.context, dict) and info.context.get("refuse_sample_secrets")
    if not value or (refused and looks_like_sample(value)):
        raise ValueError(_SAMPLE_REFUSAL)
    return value


#: A positive duration: ``500ms``, ``10s``, ``1m``, ``1h`` or a number of seconds.
Duration = Annotated[float, BeforeValidator(_duration)]
#: A duration, or 0 / ``off`` for "never" (a loop that is switched off).
DurationOrOff = Annotated[float, BeforeValidator(_duration_or_off)]
#: An http(s) URL, without its trailing slash.
BaseUrl = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_base_url)]
#: A non-empty string, spaces around it removed (a client id, a name).
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: A credential (a password, a client secret, a callback token; reference an environment variable): Text,
#: and, when the hub builds the adapter outside ``--demo``, never a sample (:func:`looks_like_sample`).
Secret = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_secret)]


class AdapterConfig(BaseModel):
    """The settings of one adapter. Unknown keys are refused: a misspelt setting would otherwise be
    silently replaced by its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The ``adapter:`` name, for the sentences.
    adapter: ClassVar[str] = "adapter"

    @classmethod
    def read(cls, target_id: str, config: Mapping[str, Any]) -> Self:
        """The settings of ``target_id``; :class:`ConfigurationError` naming every problem otherwise."""
        policy = _SECRET_POLICY.get() or _SecretPolicy()
        try:
            return cls.model_validate(dict(config), context={"refuse_sample_secrets": policy.refused})
        except ValidationError as exc:
            errors = exc.errors()
            # A `Secret | None` that holds a sample fails both members of the union: keep the Secret's reason.
            samples = {str(e["loc"][0]) for e in errors if e["loc"] and str(e["msg"]).endswith(_SAMPLE_REFUSAL)}
            if samples and all(e["loc"] and str(e["loc"][0]) in samples for e in errors):
                sentence = _sample_sentence(target_id, cls.adapter, samples, policy)
                raise SampleSecretError(sentence) from None
            others = [_problem(e) for e in errors if not e["loc"] or str(e["loc"][0]) not in samples]
            problems = "; ".join([*others, *(f"{key} {_SAMPLE_REFUSAL}" for key in sorted(samples))])
            known = ", ".join(cls.model_fields)
            raise ConfigurationError(
                f"The settings (config:) of target '{target_id}' ({cls.adapter}) are not usable: {problems}. "
                f"Fix the route file (the settings it takes: {known})."
            ) from None


def _sample_sentence(target_id: str, adapter: str, keys: set[str], policy: _SecretPolicy) -> str:
    named = [f"{key} (set {policy.variables[key]})" if key in policy.variables else key for key in sorted(keys)]
    if not policy.refused:
        return f"Target '{target_id}' ({adapter}) has an empty secret in {', '.join(named)}; set it."
    return (
        f"Target '{target_id}' ({adapter}) has a sample or empty secret in {', '.join(named)}: a sample value "
        "(the route file's default for the mock, or .env.example's) is known to anyone who reads the repository, "
        "so the hub refuses to start with it. Set the secret the partner issued, or try the hub against the "
        "mocks with `hub run --demo`."
    )


def _problem(error: Any) -> str:
    key = ".".join(str(part) for part in error.get("loc", ())) or "config"
    if error.get("type") == "missing":
        return f"{key} is required"
    if error.get("type") == "extra_forbidden":
        return f"{key} is not a setting of this adapter"
    return f"{key} {str(error.get('msg', 'is not valid')).removeprefix('Value error, ')}"
