"""Where a reader's rows come from: the local SQLite store, or the fleet's remote server.

Queries are written once, in SQLite's spelling with ``?`` placeholders and three markers that
:meth:`ReadSource.render` resolves per source:

- ``[[same X Y]]``: on the server, rows of many stores sit side by side, and a reference
  (``p.id = f.process_id``) holds only within one host and store; there the marker adds
  ``AND X.host = Y.host AND X.source_id = Y.source_id``. Locally it is empty.
- ``[[current T]]``: a table whose rows change is shipped as versions; on the server its
  current rows are the view ``current_T`` (latest version per row). Locally it is ``T``.
- ``[[host X]]``: the row's host: ``X.host`` on the server (decided by the server from the
  login role), the ``hosts`` name locally.
- ``[[seq X]]``, ``[[seqdesc X]]``: the order rows were recorded in (or its reverse):
  ``X.rowid`` locally; on the server ``X.host, X.source_id, X.id``.
- ``[[newest X]]``: newest first: by id locally, by time on a server (many hosts).
- ``[[scope X]]`` and ``[[grouped K]]``: an aggregate over ``X`` keyed by ``K`` keeps, on a
  server, each store's keys apart (``host, source_id`` are selected and grouped by too), so
  ``[[same p t]]`` can join the result to what the keys refer to.
- ``[[keyed X EXPR]]`` / ``[[ids X COLUMN]]``: a reference and the ids it may take, for
  ``[[keyed f f.process_id]] IN (SELECT [[ids p id]] FROM processes p ...)``.
- ``[[div]]``: integer division (MariaDB's ``/`` gives a decimal); ``[[json C KEY]]``: the
  text of a JSON column's top-level key.
- ``[[q NAME]]``: a column name some server reserves (``end``), quoted.
- ``[[fleethost X]]``: the host a row came from on a server, ``''`` locally (for rows with
  no ``host_id``, such as LAN devices: a local store is one host's).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from netwarden.store.dialects import SQLITE, Dialect, DialectName

_MARKER = re.compile(r"\[\[([a-z]+)((?: [^\] ]+)*)\]\]")
FETCH_ROWS = 5000


@dataclass
class ReadSource:
    """A read-only connection and how to spell queries for it."""

    conn: Any                      # sqlite3.Connection, or a driver connection
    dialect: Dialect = SQLITE
    label: str = ""                # what it is, for messages (a path or a redacted URL)
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)   # what its driver raises

    @property
    def remote(self) -> bool:
        return self.dialect is not SQLITE

    def render(self, template: str) -> str:
        """The template in this source's spelling (markers: the module's docstring)."""
        def resolve(match: re.Match[str]) -> str:
            kind, args = match.group(1), match.group(2).split()
            return (_REMOTE if self.remote else _LOCAL)[kind](self.dialect, *args)
        sql = _MARKER.sub(resolve, template)
        if self.remote:
            sql = sql.replace("%", "%%").replace("?", self.dialect.placeholder)
        return sql

    def execute(self, template: str, params: Sequence[object] = ()) -> Any:
        """A cursor over the query's rows (fetchone, fetchall, iteration), as sqlite3's."""
        sql = self.render(template)
        if not self.remote:
            return self.conn.execute(sql, tuple(params))
        cur = self.conn.cursor()
        cur.execute(sql, tuple(params))
        return _ServerRows(cur)

    def interrupt(self) -> None:
        """Stop a running query (locally; a server's query runs to its end)."""
        if not self.remote:
            self.conn.interrupt()

    def rows(self, template: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The query's rows, fetched a block at a time (an export may be millions)."""
        sql = self.render(template)
        if not self.remote:
            yield from self.conn.execute(sql, tuple(params))
            return
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            while True:
                block = cur.fetchmany(FETCH_ROWS)
                if not block:
                    break
                yield from (_plain(row) for row in block)

    def close(self) -> None:
        self.conn.close()


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    """A server's row with SQLite's types: SUM() of integers comes back as a Decimal there."""
    return tuple((int(v) if v == v.to_integral_value() else float(v))
                 if isinstance(v, Decimal) else v for v in row)


class _ServerRows:
    """A driver cursor that reads like sqlite3's, rows in SQLite's types."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone()
        return None if row is None else _plain(row)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [_plain(row) for row in self._cursor.fetchall()]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


def marks(count: int) -> str:
    """``count`` placeholders, comma-separated (``?``: a source spells them for itself)."""
    return ", ".join("?" * count)


#: What the queries read: the local store's connection, or a source (local or a server).
Reader = sqlite3.Connection | ReadSource


def local_source(conn: sqlite3.Connection, label: str = "") -> ReadSource:
    return ReadSource(conn, SQLITE, label)


def as_source(conn: sqlite3.Connection | ReadSource) -> ReadSource:
    """A query's connection as a source (a bare SQLite connection is the local store)."""
    return conn if isinstance(conn, ReadSource) else local_source(conn)


def _json_text(dialect: Dialect, column: str, key: str) -> str:
    if dialect.name is DialectName.POSTGRESQL:
        return f"({column}::json ->> '{key}')"
    return f"JSON_UNQUOTE(JSON_EXTRACT({column}, '$.{key}'))"


Spelling = Callable[..., str]

#: Each marker, spelt for the local store ...
_LOCAL: dict[str, Spelling] = {
    "same": lambda d, a, b: "",
    "current": lambda d, table: table,
    "host": lambda d, a: f"(SELECT name FROM hosts WHERE id = {a}.host_id)",
    "seq": lambda d, a: f"{a}.rowid",
    "seqdesc": lambda d, a: f"{a}.rowid DESC",
    "newest": lambda d, a: f"{a}.rowid DESC",
    "scope": lambda d, a: "",
    "grouped": lambda d, key: f"+{key}",
    "keyed": lambda d, a, expr: expr,
    "ids": lambda d, a, column: f"{a}.{column}",
    "div": lambda d: "/",
    "json": lambda d, column, key: f"json_extract({column}, '$.{key}')",
    "q": lambda d, name: d.ident(name),
    "fleethost": lambda d, a: "''",
}
#: ... and for a server, where rows of many hosts and stores sit side by side.
_REMOTE: dict[str, Spelling] = {
    "same": lambda d, a, b: f" AND {a}.host = {b}.host AND {a}.source_id = {b}.source_id",
    "current": lambda d, table: f"current_{table}",
    "host": lambda d, a: f"{a}.host",
    "seq": lambda d, a: f"{a}.host, {a}.source_id, {a}.id",
    "seqdesc": lambda d, a: f"{a}.host, {a}.source_id, {a}.id DESC",
    "newest": lambda d, a: f"{a}.time DESC, {a}.host, {a}.source_id, {a}.id DESC",
    "scope": lambda d, a: f"{a}.host AS host, {a}.source_id AS source_id, ",
    "grouped": lambda d, key: f"host, source_id, {key}",
    "keyed": lambda d, a, expr: f"({a}.host, {a}.source_id, {expr})",
    "ids": lambda d, a, column: f"{a}.host, {a}.source_id, {a}.{column}",
    "div": lambda d: "DIV" if d.name is DialectName.MARIADB else "/",
    "json": _json_text,
    "q": lambda d, name: d.ident(name),
    "fleethost": lambda d, a: f"{a}.host",
}


def schema_version(conn: Reader) -> int:
    """The store's schema version; 0 for a file that is no netwarden database (yet). On a
    server: its own schema's version (checked against this code when it was opened)."""
    source = as_source(conn)
    if source.remote:
        return int(source.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0)
    from netwarden.store.schema import current_version
    return current_version(source.conn)
