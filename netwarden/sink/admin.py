"""`netwarden sink --init-schema`: create or migrate the server's schema as its administrator.

The schema and the roles' privileges are applied with an administrator's connection, never
with a host's: a host's role owns nothing, so it cannot DELETE, TRUNCATE or DROP what it
shipped (on PostgreSQL an owner could, and would also bypass row-level security).
"""

from __future__ import annotations

from netwarden.store.remote_db import RemoteSchemaError, RemoteTarget, connect
from netwarden.store.remote_partitions import (
    PARTITIONED,
    Month,
    existing_months,
    maintenance,
)
from netwarden.store.remote_schema import (
    REMOTE_LATEST,
    group_grants,
    schema_statements,
    version_statement,
    version_table,
)


def apply_schema(target: RemoteTarget, now: float) -> tuple[int, int]:
    """(version before, version after); RemoteSchemaError when the server's is newer."""
    remote = connect(target)
    try:
        with remote.errors("creating the schema"):
            remote.execute(version_table(remote.dialect))
            remote.commit()
            (before,) = remote.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0]
            before = int(before)
            if before > REMOTE_LATEST:
                raise RemoteSchemaError(f"the server's netwarden schema is version {before}, "
                                        f"newer than this netwarden's {REMOTE_LATEST}; "
                                        "upgrade netwarden")
            if before < REMOTE_LATEST:
                statements = schema_statements(remote.dialect, now) + group_grants(remote.dialect)
                for statement in statements:
                    remote.execute(statement)
                remote.execute(version_statement(remote.dialect, int(now)))
                remote.commit()
    finally:
        remote.rollback()
        remote.close()
    return before, REMOTE_LATEST


def maintain_partitions(target: RemoteTarget, now: float, keep_days: float | None
                        ) -> tuple[list[Month], list[Month]]:
    """Add the months ahead of the partitioned tables; with ``keep_days`` drop the months
    that ended before then. Returns (added, dropped)."""
    remote = connect(target)
    added: list[Month] = []
    dropped: list[Month] = []
    try:
        with remote.errors("maintaining partitions"):
            for table in PARTITIONED:
                present = existing_months(remote.dialect, table, remote.execute)
                statements, new, old = maintenance(remote.dialect, table, present, now, keep_days)
                for statement in statements:
                    remote.execute(statement)
                remote.commit()
                added += new
                dropped += old
    finally:
        remote.rollback()
        remote.close()
    return added, dropped
