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
- ``[[seq X]]``: the order rows were recorded in: ``X.rowid`` locally; on the server
  ``X.host, X.source_id, X.id`` (each store's rows in its own order).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from netwarden.store.dialects import SQLITE, Dialect

_MARKER = re.compile(r"\[\[(same|current|host|seq) ([a-z_]+)(?: ([a-z_]+))?\]\]")
FETCH_ROWS = 5000


@dataclass
class ReadSource:
    """A read-only connection and how to spell queries for it."""

    conn: Any                      # sqlite3.Connection, or a driver connection
    dialect: Dialect = SQLITE
    label: str = ""                # what it is, for messages (a path or a redacted URL)

    @property
    def remote(self) -> bool:
        return self.dialect is not SQLITE

    def render(self, template: str) -> str:
        def resolve(match: re.Match[str]) -> str:
            kind, first, second = match.groups()
            if kind == "same":
                return (f" AND {first}.host = {second}.host AND "
                        f"{first}.source_id = {second}.source_id") if self.remote else ""
            if kind == "current":
                return f"current_{first}" if self.remote else first
            if kind == "seq":
                return f"{first}.host, {first}.source_id, {first}.id" if self.remote else \
                    f"{first}.rowid"
            return f"{first}.host" if self.remote else \
                f"(SELECT name FROM hosts WHERE id = {first}.host_id)"
        sql = _MARKER.sub(resolve, template)
        if self.remote:
            sql = sql.replace("%", "%%").replace("?", self.dialect.placeholder)
        return sql

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
                yield from (tuple(row) for row in block)

    def close(self) -> None:
        self.conn.close()


def local_source(conn: sqlite3.Connection, label: str = "") -> ReadSource:
    return ReadSource(conn, SQLITE, label)
