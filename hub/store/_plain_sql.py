"""SQLite only: the grouped writes' Core statements run as plain SQL, their rows as tuples.

A grouped write is a few statements of 16 rows or so. Through ``Connection.execute`` SQLAlchemy
prepares every row's parameters with its general machinery (an execution context, the type
processors looked up for each parameter), which costs more CPU than SQLite's own work on the rows,
in a thread that holds the GIL the event loop needs meanwhile. Here each statement is compiled once
per set of columns, the processors of its parameters are looked up once, and each row becomes one
tuple for the driver's ``executemany``. SQLAlchemy still runs the transaction and wraps the driver's
errors (an ``IntegrityError`` stays one). What is written is what SQLAlchemy writes: the same
processors turn datetimes into SQLite's text, JSON columns are written by the store's own JSON
function, and a column the rows leave out gets its scalar ``default`` (one computed in Python is
refused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.schema import ColumnDefault

__all__ = ["execute_many"]

_DIALECT = SQLiteDialect(paramstyle="qmark")
Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    #: Per ``?`` in order: the row's key to read, or None for a constant of the statement's own.
    keys: tuple[str | None, ...]
    processors: tuple[Processor | None, ...]
    constants: tuple[Any, ...]
    returning: bool

    def row(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            constant if key is None else _processed(params[key], process)
            for key, process, constant in zip(self.keys, self.processors, self.constants, strict=True)
        )


@lru_cache(maxsize=256)
def _multi_row_sql(sql: str, count: int) -> str:
    """``INSERT … VALUES (…), (…), … RETURNING …``: one statement, so SQLite returns every row's key."""
    head, _, rest = sql.partition(" VALUES ")
    values, _, tail = rest.partition(" RETURNING ")
    return f"{head} VALUES {', '.join([values] * count)} RETURNING {tail}"


@lru_cache(maxsize=64)
def _compile(statement: UpdateBase, keys: tuple[str, ...], json_text: Processor) -> _Compiled:
    compiled = statement.compile(dialect=_DIALECT, column_keys=list(keys))
    sql = str(compiled)
    names = list(compiled.positiontup or ())
    binds = [compiled.binds[name] for name in names]
    processors = [
        json_text if isinstance(b.type, JSON) else b.type.dialect_impl(_DIALECT).bind_processor(_DIALECT) for b in binds
    ]
    defaults = _defaults(compiled)
    constants = [
        None if b.required else _processed(_constant(name, b, defaults), p)
        for name, b, p in zip(names, binds, processors, strict=True)
    ]
    return _Compiled(
        sql=sql,
        keys=tuple(name if b.required else None for name, b in zip(names, binds, strict=True)),
        processors=tuple(processors),
        constants=tuple(constants),
        returning=" RETURNING " in sql,
    )


def _defaults(compiled: SQLCompiler) -> dict[str, ColumnDefault]:
    """The columns whose Python-side default SQLAlchemy would compute before running the statement
    (an INSERT's ``default``, an UPDATE's ``onupdate``), by parameter name."""
    found: dict[str, ColumnDefault] = {}
    for columns, attribute in ((compiled.insert_prefetch, "default"), (compiled.update_prefetch, "onupdate")):
        for column in columns:
            default = getattr(column, attribute)
            if default is not None:
                found[column.key] = default
    return found


def _constant(name: str, bind: BindParameter[Any], defaults: Mapping[str, ColumnDefault]) -> Any:
    """The value of a parameter the rows do not give: the statement's own, or its column's scalar
    default (SQLAlchemy applies that only when it runs the statement itself, so it is applied here).
    A default computed in Python needs SQLAlchemy's execution: leaving that column out is an error,
    not a silent NULL."""
    default = defaults.get(name)
    if default is None:
        return bind.effective_value
    if default.is_scalar:
        return default.arg
    raise ValueError(
        f"Column {name!r} has a default computed in Python, which the plain-SQL write cannot apply; "
        "give its value in every row."
    )


def _processed(value: Any, process: Processor | None) -> Any:
    return value if process is None or value is None else process(value)


def execute_many(
    connection: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]], *, json_text: Processor
) -> Sequence[Row[Any]]:
    """Run ``statement`` once per row (every row has the same keys) in one call to the driver; an
    INSERT … RETURNING gives the returned rows, in no particular order."""
    if not rows:
        return []
    compiled = _compile(statement, tuple(rows[0]), json_text)
    if not compiled.returning:
        connection.exec_driver_sql(compiled.sql, [compiled.row(r) for r in rows])
        return []
    flat = tuple(value for r in rows for value in compiled.row(r))
    return connection.exec_driver_sql(_multi_row_sql(compiled.sql, len(rows)), flat).all()
