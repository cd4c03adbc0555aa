"""The test controls every mock answers the same way, written once.

* ``GET /healthz``: ``{"status": "ok"}`` once the mock serves.
* ``/_mock/faults``: ``GET`` shows the fault knobs, ``POST`` changes only the knobs its JSON body names
  (checked against the mock's settings model when it has one: HTTP 422 otherwise, as FastAPI answers)
  and shows them, ``DELETE`` puts every knob back to its default and shows them.
* ``/_mock/calls``: ``GET`` lists the calls the mock received, oldest first; ``DELETE`` forgets them.
* ``DELETE /_mock/state``: forget everything (``{"status": "reset"}``).

Each mock says what its knobs and calls are through small functions (plain or ``async``, for a mock
that guards its state with a lock); what only one mock has (VNPost's clock, the portal's dossiers,
the payment platform's payments) stays in that mock. The controls are never faulted themselves.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast

from fastapi import Body, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

__all__ = [
    "CountedKnobs",
    "add_call_log",
    "add_counted_knobs",
    "add_fault_knobs",
    "add_health",
    "add_loose_fault_knobs",
    "add_state_reset",
    "use_one",
]

T = TypeVar("T")
Knobs = dict[str, Any]
#: A function of a mock that answers now or once awaited.
Answering = Callable[[], T | Awaitable[T]]


async def _settle(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return cast("T", await value)
    return value


def add_health(app: FastAPI) -> None:
    """``GET /healthz``."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}


def add_fault_knobs(
    app: FastAPI,
    *,
    show: Answering[Knobs],
    change: Callable[[Any], Knobs | Awaitable[Knobs]],
    clear: Answering[Knobs],
    settings: type[BaseModel] | None = None,
) -> None:
    """``GET``, ``POST`` and ``DELETE /_mock/faults``. ``change`` gets the body validated as ``settings``
    (only the keys given are set) or, without a model, the body as a dict; it answers the knobs."""

    @app.get("/_mock/faults")
    async def get_faults() -> Knobs:
        return await _settle(show())

    @app.post("/_mock/faults")
    async def set_faults(body: Annotated[dict[str, Any], Body()]) -> Knobs:
        if settings is None:
            return await _settle(change(body))
        try:
            given = settings.model_validate(body)
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
            raise RequestValidationError(errors, body=body) from None
        return await _settle(change(given))

    @app.delete("/_mock/faults")
    async def clear_faults() -> Knobs:
        return await _settle(clear())


@dataclass
class CountedKnobs:
    """Base of a mock's fault knobs kept as dataclass fields with their defaults: ``*_next`` counts
    are used up one call at a time (:meth:`take`), the others are settings (status, delays)."""

    def take(self, name: str) -> bool:
        """Use one unit of the ``*_next`` knob ``name``; True when there was one."""
        left: int = getattr(self, name)
        if left > 0:
            setattr(self, name, left - 1)
            return True
        return False

    def apply(self, settings: BaseModel) -> None:
        """Set the knobs ``settings`` gives (its fields left at None are not changed)."""
        for name, value in settings.model_dump(exclude_none=True).items():
            setattr(self, name, value)

    def reset(self) -> None:
        """Every knob back to its default."""
        self.__dict__.update(type(self)().__dict__)

    def as_dict(self) -> Knobs:
        return dict(self.__dict__)


def add_counted_knobs(app: FastAPI, knobs: CountedKnobs, settings: type[BaseModel]) -> None:
    """``/_mock/faults`` for :class:`CountedKnobs` set through the model ``settings``."""

    def change(given: BaseModel) -> Knobs:
        knobs.apply(given)
        return knobs.as_dict()

    def clear() -> Knobs:
        knobs.reset()
        return knobs.as_dict()

    add_fault_knobs(app, show=knobs.as_dict, change=change, clear=clear, settings=settings)


def add_loose_fault_knobs(app: FastAPI, knobs: Knobs) -> None:
    """``/_mock/faults`` for knobs kept in a plain dict that takes any key: ``POST`` merges the body
    into it, ``DELETE`` empties it (every knob back to the mock's default)."""

    def change(given: Knobs) -> Knobs:
        knobs.update(given)
        return knobs

    def clear() -> Knobs:
        knobs.clear()
        return knobs

    add_fault_knobs(app, show=lambda: knobs, change=change, clear=clear)


def use_one(knobs: Knobs, name: str) -> bool:
    """Use one unit of the counted knob ``name`` (``fail_next``: 2 fails the next two calls); True when
    there was one, so this call is faulted."""
    left = int(knobs.get(name, 0) or 0)
    if left <= 0:
        return False
    knobs[name] = left - 1
    return True


def add_call_log(
    app: FastAPI,
    *,
    calls: Answering[list[Any]],
    forget: Answering[None] | None = None,
    forgotten: Callable[[], Response] = lambda: JSONResponse({"status": "reset"}),
) -> None:
    """``GET /_mock/calls`` lists ``calls()``; with ``forget``, ``DELETE /_mock/calls`` calls it and
    answers ``forgotten()`` (``{"status": "reset"}`` unless the mock has always answered otherwise)."""

    @app.get("/_mock/calls")
    async def list_calls() -> list[Any]:
        return await _settle(calls())

    if forget is None:
        return

    @app.delete("/_mock/calls")
    async def forget_calls() -> Response:
        await _settle(forget())
        return forgotten()


def add_state_reset(app: FastAPI, reset: Answering[None]) -> None:
    """``DELETE /_mock/state``: forget every record and put every knob back to its default."""

    @app.delete("/_mock/state")
    async def reset_state() -> dict[str, str]:
        await _settle(reset())
        return {"status": "reset"}
