"""The server's flow table, partitioned by month: retention drops a month, not rows.

A fleet's flow table is the one that grows; deleting old rows from it costs as much as
writing them did, and bloats it. Partitioned by month of ``time`` (PostgreSQL declarative
partitioning; MariaDB RANGE partitions), retention is ``DROP`` of whole months.

- PostgreSQL: one table per month (``flows_pYYYYMM``) plus ``flows_default`` for rows outside
  them (a host's backlog from before the schema, a clock far off). Months are created ahead
  (``MONTHS_AHEAD``), since a month cannot be split out of the default partition cheaply.
- MariaDB: ``p_old`` below the first month, one partition a month, ``p_future`` above; a new
  month is split out of ``p_future`` (REORGANIZE PARTITION).

``netwarden sink --maintain-partitions`` (the administrator, e.g. monthly from a timer) adds
the months ahead and, with ``--keep-days``, drops the months wholly older than that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netwarden.store.dialects import Dialect, DialectName
from netwarden.store.remote_rollups import dropped_month
from netwarden.store.shipping import SHIPPED_TABLES, ShippedTable

MONTHS_AHEAD = 12
PARTITIONED = tuple(t for t in SHIPPED_TABLES if t.partitioned)


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, when: float) -> "Month":
        day = dt.datetime.fromtimestamp(when, dt.timezone.utc)
        return cls(day.year, day.month)

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def start(self) -> int:
        return int(dt.datetime(self.year, self.month, 1, tzinfo=dt.timezone.utc).timestamp())

    @property
    def end(self) -> int:
        return self.next().start

    @property
    def label(self) -> str:
        return f"p{self.year:04d}{self.month:02d}"


def months(first: Month, count: int) -> list[Month]:
    result = [first]
    while len(result) < count:
        result.append(result[-1].next())
    return result


def partition_clause(dialect: Dialect, table: ShippedTable, now: float) -> str:
    """What follows the column list of a partitioned table's CREATE TABLE."""
    column = dialect.ident(table.time)
    if dialect.name is DialectName.POSTGRESQL:
        return f" PARTITION BY RANGE ({column})"
    ahead = months(Month.of(now), MONTHS_AHEAD)
    parts = [f"PARTITION p_old VALUES LESS THAN ({ahead[0].start})"]
    parts += [f"PARTITION {m.label} VALUES LESS THAN ({m.end})" for m in ahead]
    parts.append("PARTITION p_future VALUES LESS THAN MAXVALUE")
    return f" PARTITION BY RANGE ({column}) (\n    " + ",\n    ".join(parts) + ")"


def initial_partitions(dialect: Dialect, table: ShippedTable, now: float) -> list[str]:
    """PostgreSQL's partitions, made with the table (MariaDB's are in its CREATE TABLE)."""
    if dialect.name is not DialectName.POSTGRESQL:
        return []
    return [_pg_default(dialect, table)] + [
        _pg_month(dialect, table, m) for m in months(Month.of(now), MONTHS_AHEAD)]


def _pg_default(dialect: Dialect, table: ShippedTable) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {dialect.ident(table.name + '_default')} "
            f"PARTITION OF {dialect.ident(table.name)} DEFAULT")


def _pg_month(dialect: Dialect, table: ShippedTable, month: Month) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {dialect.ident(f'{table.name}_{month.label}')} "
            f"PARTITION OF {dialect.ident(table.name)} "
            f"FOR VALUES FROM ({month.start}) TO ({month.end})")


def existing_months(dialect: Dialect, table: ShippedTable,
                    query: Callable[[str, Sequence[object]], list[tuple[object, ...]]]
                    ) -> list[Month]:
    """The months ``table`` has a partition for, oldest first."""
    if dialect.name is DialectName.POSTGRESQL:
        rows = query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                     "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
                     (table.name,))
        names = [str(r[0])[len(table.name) + 1:] for r in rows]
    else:
        rows = query("SELECT PARTITION_NAME FROM information_schema.PARTITIONS WHERE "
                     "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table.name,))
        names = [str(r[0]) for r in rows]
    found = [Month(int(n[1:5]), int(n[5:7])) for n in names
             if len(n) == 7 and n.startswith("p") and n[1:].isdigit()]
    return sorted(found, key=lambda m: (m.year, m.month))


def maintenance(dialect: Dialect, table: ShippedTable, present: Sequence[Month], now: float,
                keep_days: float | None) -> tuple[list[str], list[Month], list[Month]]:
    """(statements, months added, months dropped): the months ahead that are missing, and
    with ``keep_days`` the months that ended before now - keep_days."""
    have = set(present)
    wanted = [m for m in months(Month.of(now), MONTHS_AHEAD) if m not in have]
    if dialect.name is DialectName.MARIADB and present:
        last = max(present, key=lambda m: (m.year, m.month))
        wanted = [m for m in wanted if (m.year, m.month) > (last.year, last.month)]
    statements = []
    name = dialect.ident(table.name)
    for month in wanted:
        if dialect.name is DialectName.POSTGRESQL:
            statements.append(_pg_month(dialect, table, month))
        else:
            statements.append(
                f"ALTER TABLE {name} REORGANIZE PARTITION p_future INTO ("
                f"PARTITION {month.label} VALUES LESS THAN ({month.end}), "
                "PARTITION p_future VALUES LESS THAN MAXVALUE)")
    dropped = [] if keep_days is None else [m for m in present if m.end <= now - keep_days * 86400]
    for month in dropped:
        if dialect.name is DialectName.POSTGRESQL:
            month_table = dialect.ident(f"{table.name}_{month.label}")
            statements.append(f"DROP TABLE IF EXISTS {month_table}")
            if table.name == "flows":      # the server's rollups of those flows
                statements += dropped_month(dialect, month.start, month.end)
        else:
            statements.append(f"ALTER TABLE {name} DROP PARTITION {month.label}")
    return statements, wanted, dropped
