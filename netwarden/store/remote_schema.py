"""The remote server's schema and grants, derived from the local SQLite schema.

One logical schema: each shipped table on the server has the local table's columns (read from
a SQLite store migrated to :data:`LOCAL_BASE_VERSION`), typed through the dialect table, plus
``host`` (set by the server from the login role, never by the client) and ``source_id``; its
primary key is (host, source_id, sequence), which makes every resend harmless.

Who may do what (docs/remote.md):
- an administrator owns the schema and applies migrations (``netwarden sink --init-schema``);
- each host logs in as its own role, a member of ``netwarden_hosts``: INSERT on the shipped
  tables and SELECT on ``schema_version``, nothing else. PostgreSQL fills ``host`` with
  ``DEFAULT current_user`` and an ``AFTER INSERT`` row trigger refuses any row whose host is
  not the login role (schema version 1 used row-level security instead, which COPY FROM
  refuses: version 2 lets the sink COPY straight into the table); MariaDB/MySQL overwrite it
  in a ``BEFORE INSERT`` trigger from ``USER()`` (``CURRENT_USER()`` in a trigger is its
  definer);
- viewers log in as a member of ``netwarden_readers``: SELECT.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from netwarden.store.dialects import Dialect, DialectName
from netwarden.store.remote_partitions import initial_partitions, partition_clause
from netwarden.store.remote_rollups import rollup_grants, rollup_statements
from netwarden.store.schema import migrate
from netwarden.store.shipping import SHIPPED_TABLES, Column, ShippedTable, local_columns

#: The local schema version whose tables the remote schema's first version mirrors.
LOCAL_BASE_VERSION = 4
HOSTS_ROLE = "netwarden_hosts"
READERS_ROLE = "netwarden_readers"


@dataclass(frozen=True)
class RemoteMigration:
    version: int
    description: str


REMOTE_MIGRATIONS: tuple[RemoteMigration, ...] = (
    RemoteMigration(1, "shipped tables of local schema 4, keyed by (host, source_id, sequence)"),
    RemoteMigration(2, "PostgreSQL: a row's host checked by a trigger instead of row-level "
                       "security, so a batch is COPYed straight into its table; "
                       "current_known_devices leaves out devices deleted since"),
    RemoteMigration(3, "PostgreSQL: rollups of flows per period (15 min to a day) by process, "
                       "domain and remote address, kept by a trigger from the rows inserted, "
                       "built from the flows held"),
)
REMOTE_LATEST = REMOTE_MIGRATIONS[-1].version


#: A table only the server has: each sink's sign of life, written every [remote] heartbeat_s
#: whether or not there are rows to ship. A host whose heartbeats stop is silent (the fleet
#: watcher); the lag they carry is the fleet view's. ``seq``: the sink's clock in ms.
HEARTBEATS = ShippedTable("heartbeats", "seq", time="time")
HEARTBEAT_COLUMNS = (Column("seq", "INTEGER", True), Column("time", "REAL", True),
                     Column("state", "TEXT", True), Column("behind_rows", "INTEGER", True),
                     Column("behind_s", "REAL", True), Column("shipped_rows", "INTEGER", True),
                     Column("error", "TEXT", True))
#: Every table on the server, in the order one round writes them.
REMOTE_TABLES = (*SHIPPED_TABLES, HEARTBEATS)


@functools.cache
def shipped_columns() -> dict[str, tuple[Column, ...]]:
    """Each shipped table's local columns, from a scratch store at the base version (made
    once a process: the result never changes; callers do not modify it)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn, 0, upto=LOCAL_BASE_VERSION)
        columns = {t.name: local_columns(conn, t.name) for t in SHIPPED_TABLES}
    finally:
        conn.close()
    columns[HEARTBEATS.name] = HEARTBEAT_COLUMNS
    return columns


def _host_column(dialect: Dialect) -> str:
    if dialect.name is DialectName.POSTGRESQL:
        return f"host {dialect.key_text} NOT NULL DEFAULT current_user"
    return f"host {dialect.key_text} NOT NULL DEFAULT ''"


def _create_table(dialect: Dialect, table: ShippedTable, columns: Sequence[Column],
                  now: float) -> str:
    lines = [_host_column(dialect), f"source_id {dialect.key_text} NOT NULL"]
    for column in columns:
        kind = dialect.column_type(column.kind)
        not_null = " NOT NULL" if column.not_null or column.name == table.sequence else ""
        lines.append(f"{dialect.ident(column.name)} {kind}{not_null}")
    lines.append(f"PRIMARY KEY ({', '.join(dialect.ident(k) for k in table.remote_key)})")
    suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" \
        if dialect.name is DialectName.MARIADB else ""
    if table.partitioned:
        suffix += partition_clause(dialect, table, now)
    body = ",\n    ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {dialect.ident(table.name)} (\n    {body}){suffix}"


def _table_extras(dialect: Dialect, table: ShippedTable) -> list[str]:
    name = dialect.ident(table.name)
    extras = []
    if table.time:
        extras.append(f"CREATE INDEX IF NOT EXISTS {dialect.ident(table.name + '_time')} "
                      f"ON {name} ({dialect.ident(table.time)})")
    if table is HEARTBEATS:
        extras.append(f"CREATE INDEX IF NOT EXISTS {dialect.ident('heartbeats_host_time')} "
                      f"ON {name} (host, {dialect.ident('time')})")
    if dialect.name is DialectName.POSTGRESQL:
        trigger = dialect.ident(table.name + "_host")
        extras += [
            # Version 1 enabled row-level security; COPY FROM refuses a table that has it.
            f"ALTER TABLE {name} DISABLE ROW LEVEL SECURITY",
            f"DROP TRIGGER IF EXISTS {trigger} ON {name}",
            # AFTER, not BEFORE: a BEFORE row trigger makes COPY insert row by row, while
            # this one's WHEN is evaluated in the executor and calls nothing for a good row.
            f"CREATE TRIGGER {trigger} AFTER INSERT ON {name} FOR EACH ROW "
            f"WHEN (NEW.host IS DISTINCT FROM session_user) EXECUTE FUNCTION {REFUSE_HOST}()"]
    else:
        extras.append(f"CREATE TRIGGER IF NOT EXISTS {dialect.ident(table.name + '_host')} "
                      f"BEFORE INSERT ON {name} FOR EACH ROW "
                      "SET NEW.host = SUBSTRING_INDEX(USER(), '@', 1)")
    return extras


#: A versioned table whose rows the store deletes, and the table of their tombstones (each
#: with the sequence of its deletion): a row deleted after its latest version is not current.
TOMBSTONES = {"known_devices": "known_devices_removed"}


def _current_view(dialect: Dialect, table: ShippedTable) -> list[str]:
    """``current_T``: each row's latest version that was not deleted since (readers join
    these, never the versions). Made after every table: it may read a tombstone table."""
    q = dialect.ident
    same = " AND ".join(f"w.{q(k)} = v.{q(k)}" for k in ("host", "source_id", *table.key))
    removed = ""
    if table.name in TOMBSTONES:
        gone = " AND ".join(f"r.{q(k)} = v.{q(k)}" for k in ("host", "source_id", *table.key))
        removed = (f" AND NOT EXISTS (SELECT 1 FROM {q(TOMBSTONES[table.name])} r "
                   f"WHERE {gone} AND r.seq > v.seq)")
    statements = [
        f"CREATE OR REPLACE VIEW {q('current_' + table.name)} AS SELECT * FROM {q(table.name)} v "
        f"WHERE v.seq = (SELECT MAX(w.seq) FROM {q(table.name)} w WHERE {same}){removed}"]
    if table.key == ("id",):
        statements.insert(0, f"CREATE INDEX IF NOT EXISTS {q(table.name + '_versions')} ON "
                             f"{q(table.name)} (host, source_id, {q('id')}, seq)")
    return statements


#: PostgreSQL: what a row naming another host than the login role meets. session_user,
#: not current_user: SET ROLE cannot change it, so a host cannot write as its group either.
REFUSE_HOST = "netwarden_refuse_other_host"
REFUSE_HOST_FUNCTION = (
    f"CREATE OR REPLACE FUNCTION {REFUSE_HOST}() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'role % may not write rows of host %', session_user, NEW.host "
    "USING ERRCODE = 'insufficient_privilege'; END $$")


def version_table(dialect: Dialect) -> str:
    return ("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            f"description {dialect.column_type('TEXT')} NOT NULL, applied BIGINT NOT NULL)")


def schema_statements(dialect: Dialect, now: float | None = None) -> list[str]:
    """The statements of the latest remote version, in order (what --print-schema prints).
    Each is idempotent and brings an older version's objects up to date, so --init-schema
    migrates by applying them all. The partitioned flow table gets its months from ``now``
    on (default: the current time)."""
    now = time.time() if now is None else now
    columns = shipped_columns()
    statements = [version_table(dialect)]
    if dialect.name is DialectName.POSTGRESQL:
        statements.append(REFUSE_HOST_FUNCTION)
    for table in REMOTE_TABLES:
        statements.append(_create_table(dialect, table, columns[table.name], now))
        statements.extend(initial_partitions(dialect, table, now) if table.partitioned else [])
        statements.extend(_table_extras(dialect, table))
    for table in REMOTE_TABLES:
        if table.versioned:
            statements.extend(_current_view(dialect, table))
    return statements + rollup_statements(dialect)


def _quoted_user(dialect: Dialect, name: str) -> str:
    if dialect.name is DialectName.MARIADB:
        return f"'{name}'@'%'"
    return dialect.ident(name)


def _pg_role(name: str, login: bool) -> str:
    options = "LOGIN" if login else "NOLOGIN"
    return (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') "
            f"THEN CREATE ROLE \"{name}\" {options}; END IF; END $$")


def group_grants(dialect: Dialect) -> list[str]:
    """Roles and privileges for every host and reader (PostgreSQL's groups); applied by
    --init-schema too."""
    if dialect.name is not DialectName.POSTGRESQL:
        return []
    statements = [_pg_role(HOSTS_ROLE, False), _pg_role(READERS_ROLE, False),
                  f"GRANT SELECT ON schema_version TO {HOSTS_ROLE}, {READERS_ROLE}",
                  *rollup_grants(dialect, READERS_ROLE)]
    for table in REMOTE_TABLES:
        name = dialect.ident(table.name)
        statements += [
            f"GRANT INSERT ON {name} TO {HOSTS_ROLE}",
            f"GRANT SELECT ON {name} TO {READERS_ROLE}",
            *([f"GRANT SELECT ON {dialect.ident('current_' + table.name)} TO {READERS_ROLE}"]
              if table.versioned else []),
            # Version 1's row policies and the hosts' SELECT on the key columns (which its
            # ON CONFLICT (key) needed): a bare ON CONFLICT DO NOTHING needs neither, and
            # without row-level security that SELECT would show a host the others' keys.
            f"REVOKE SELECT ({', '.join(dialect.ident(k) for k in table.remote_key)}) "
            f"ON {name} FROM {HOSTS_ROLE}",
            *(f"DROP POLICY IF EXISTS {policy} ON {name}"
              for policy in ("host_inserts", "host_keys", "readers_read")),
        ]
    return statements


def login_grants(dialect: Dialect, database: str, host_role: str,
                 reader_role: str) -> list[str]:
    """A login role for one host (INSERT only) and one for the viewers (SELECT only).

    Created without a password (PostgreSQL: cannot log in by password; MariaDB: locked);
    the administrator sets one, as the printed comment says.
    """
    if dialect.name is DialectName.POSTGRESQL:
        # TEMPORARY: the sink COPYs each batch into a session table first (remote_db).
        return [_pg_role(host_role, True), f"GRANT {HOSTS_ROLE} TO \"{host_role}\"",
                f"GRANT TEMPORARY ON DATABASE \"{database}\" TO {HOSTS_ROLE}",
                _pg_role(reader_role, True), f"GRANT {READERS_ROLE} TO \"{reader_role}\""]
    db = dialect.ident(database)
    host, reader = _quoted_user(dialect, host_role), _quoted_user(dialect, reader_role)
    statements = [f"CREATE USER IF NOT EXISTS {host} ACCOUNT LOCK",
                  f"CREATE USER IF NOT EXISTS {reader} ACCOUNT LOCK",
                  f"GRANT SELECT ON {db}.schema_version TO {host}",
                  f"GRANT SELECT ON {db}.* TO {reader}"]
    statements += [f"GRANT INSERT ON {db}.{dialect.ident(t.name)} TO {host}"
                   for t in REMOTE_TABLES]
    return statements


def password_hint(dialect: Dialect, role: str) -> str:
    if dialect.name is DialectName.POSTGRESQL:
        return f"-- then give it a password: \\password {role}   (psql)"
    return (f"-- then give it a password: ALTER USER '{role}'@'%' IDENTIFIED BY '...' "
            "ACCOUNT UNLOCK;")


def script(statements: Sequence[str]) -> str:
    """Statements as a file an administrator can feed to psql or mariadb."""
    return "".join(f"{s};\n" for s in statements)


def version_statement(dialect: Dialect, applied: int = 0) -> str:
    """Records the schema's version (``applied``: epoch s; 0 when printed for later use)."""
    latest = REMOTE_MIGRATIONS[-1]
    description = latest.description.replace("'", "''")
    values = f"({latest.version}, '{description}', {int(applied)})"
    return dialect.insert_ignore.format(table="schema_version",
                                        columns="version, description, applied",
                                        rows=values, key="version")
