"""A PostgreSQL server's rollups (remote schema 3): kept by the server from the rows it inserts.

The sink ships raw flows only (shipping every in-place update of a rollup row would multiply
the traffic). On PostgreSQL a statement-level ``AFTER INSERT`` trigger on ``flows`` with a
transition table sees exactly the rows that statement really inserted: a resend's rows,
skipped by ``ON CONFLICT DO NOTHING``, are not in it, so nothing is counted twice. The trigger
sums them by period and key and upserts the sums. Its function is ``SECURITY DEFINER`` (the
administrator's): a host's role keeps INSERT on its tables and nothing on the rollups.

Building them for rows a server already holds is part of the same migration: the trigger is
made first (which locks out concurrent inserts until the migration commits), then each rollup
is filled from ``flows`` if it is still empty.

MariaDB has no rollups (its readers sum raw rows; docs/rollups.md says why).
"""

from __future__ import annotations

from netwarden.store.dialects import Dialect, DialectName
from netwarden.store.rollups import ROLLUPS, Rollup

ROLL_FUNCTION = "netwarden_roll_flows"
ROLL_TRIGGER = "flows_rollups"


def _table(dialect: Dialect, rollup: Rollup) -> str:
    bigint = dialect.column_type("INTEGER")
    column = rollup.family.column
    return (f"CREATE TABLE IF NOT EXISTS {rollup.table} (host {dialect.key_text} NOT NULL, "
            f"source_id {dialect.key_text} NOT NULL, time {bigint} NOT NULL, "
            f"{column} {bigint} NOT NULL, flow_rows {bigint} NOT NULL, sent {bigint} NOT NULL, "
            f"recv {bigint} NOT NULL, first_time {bigint} NOT NULL, "
            f"last_time {bigint} NOT NULL, PRIMARY KEY (time, host, source_id, {column}))")


def _sums(rollup: Rollup, rows: str, where: str = "") -> str:
    """SELECT of a rollup's rows from the raw flows in ``rows``."""
    return (f"SELECT host, source_id, time - time % {rollup.period}, {rollup.family.raw}, "
            "COUNT(*), SUM(sent), SUM(recv), MIN(time), MAX(time) "
            f"FROM {rows}{where} GROUP BY 1, 2, 3, 4")


def _columns(rollup: Rollup) -> str:
    return (f"host, source_id, time, {rollup.family.column}, flow_rows, sent, recv, "
            "first_time, last_time")


def _upsert(rollup: Rollup) -> str:
    t = rollup.table
    return (f"INSERT INTO {t} AS r ({_columns(rollup)}) {_sums(rollup, 'inserted')} "
            f"ON CONFLICT (time, host, source_id, {rollup.family.column}) DO UPDATE SET "
            "flow_rows = r.flow_rows + excluded.flow_rows, sent = r.sent + excluded.sent, "
            "recv = r.recv + excluded.recv, "
            "first_time = LEAST(r.first_time, excluded.first_time), "
            "last_time = GREATEST(r.last_time, excluded.last_time);")


def _function() -> str:
    body = " ".join(_upsert(r) for r in ROLLUPS)
    return (f"CREATE OR REPLACE FUNCTION {ROLL_FUNCTION}() RETURNS trigger LANGUAGE plpgsql "
            "SECURITY DEFINER SET search_path FROM CURRENT AS $$ "
            f"BEGIN {body} RETURN NULL; END $$")


def _build(rollup: Rollup) -> str:
    """Fills an empty rollup from the flows held (a no-op once it has rows)."""
    return (f"INSERT INTO {rollup.table} ({_columns(rollup)}) "
            + _sums(rollup, "flows", f" WHERE NOT EXISTS (SELECT 1 FROM {rollup.table})"))


def rollup_statements(dialect: Dialect) -> list[str]:
    """The rollups, their trigger and their build, idempotent (none on MariaDB)."""
    if dialect.name is not DialectName.POSTGRESQL:
        return []
    return [*(_table(dialect, r) for r in ROLLUPS), _function(),
            f"DROP TRIGGER IF EXISTS {ROLL_TRIGGER} ON flows",
            f"CREATE TRIGGER {ROLL_TRIGGER} AFTER INSERT ON flows REFERENCING NEW TABLE AS "
            f"inserted FOR EACH STATEMENT EXECUTE FUNCTION {ROLL_FUNCTION}()",
            *(_build(r) for r in ROLLUPS)]


def rollup_grants(dialect: Dialect, readers: str) -> list[str]:
    if dialect.name is not DialectName.POSTGRESQL:
        return []
    return [f"GRANT SELECT ON {r.table} TO {readers}" for r in ROLLUPS]


def dropped_month(dialect: Dialect, start: int, end: int) -> list[str]:
    """Retention dropped the flows of [start, end) (a month: whole UTC days): their rollup
    rows go too."""
    if dialect.name is not DialectName.POSTGRESQL:
        return []
    return [f"DELETE FROM {r.table} WHERE time >= {int(start)} AND time < {int(end)}"
            for r in ROLLUPS]
