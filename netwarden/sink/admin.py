"""`netwarden sink --init-schema`: create or migrate the server's schema as its administrator.

The schema and the roles' privileges are applied with an administrator's connection, never
with a host's: a host's role owns nothing, so it cannot DELETE, TRUNCATE or DROP what it
shipped (on PostgreSQL an owner could, and would also bypass row-level security).
"""

from __future__ import annotations

from netwarden.store.remote_db import RemoteSchemaError, RemoteTarget, connect
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
                for statement in schema_statements(remote.dialect) + group_grants(remote.dialect):
                    remote.execute(statement)
                remote.execute(version_statement(remote.dialect, int(now)))
                remote.commit()
    finally:
        remote.rollback()
        remote.close()
    return before, REMOTE_LATEST
