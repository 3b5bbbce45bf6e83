"""Opening SQLite the two ways netwarden does: one writer (WAL) and read-only readers."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote


class StoreUnavailable(RuntimeError):
    """The database cannot be opened; the message says why in words a user can act on."""


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (connection in autocommit mode)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_writer(path: Path, group: str | None = "netwarden",
                owner: str | None = None) -> sqlite3.Connection:
    """A writer's connection: WAL so readers never block it, files private to a group.

    The database is a record of who talked to whom: mode 0640 (0660 for the WAL index, which
    readers must map), group ``netwarden`` when that group exists. ``owner`` (when root opens
    it and that user exists) owns the files, so the unprivileged discovery service, running
    as that user, can write the same database; SQLite itself gives the journal files it
    creates as root the database file's owner.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o027)
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                               timeout=30)
        ensure_wal(conn)
    finally:
        os.umask(old_umask)
    # NORMAL in WAL mode: a committed window survives a crash of the sensor (not of power).
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    _share_with_group(path, group, owner)
    return conn


def ensure_wal(conn: sqlite3.Connection, attempts: int = 100, pause_s: float = 0.1) -> None:
    """Put the database in WAL mode (it stays so: the mode is stored in the file).

    Switching needs every other connection out of its transaction, and SQLite reports a
    conflict at once ("database is locked") instead of waiting on the busy handler: retry a
    while (readers' transactions are short), then give up with that error.
    """
    for attempt in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError:
            if attempt == attempts - 1:
                raise
        time.sleep(pause_s)


def close_writer(conn: sqlite3.Connection) -> None:
    """Close a writer's connection, leaving a database that read-only readers can open.

    A reader of a WAL database must map its -shm index, and SQLite deletes that file when the
    last connection closes; a reader who may not create files next to the database (the
    viewers, in /var/lib/netwarden) then cannot open it at all. So the last writer out turns
    the file back to a rollback journal, which readers open without any side file. While
    another connection is open the switch fails (SQLITE_BUSY) and is not needed: the index
    stays while anyone has it mapped. The next writer turns WAL on again.
    """
    try:
        conn.execute("PRAGMA journal_mode = DELETE").fetchone()
    except sqlite3.OperationalError:
        pass
    conn.close()


def _share_with_group(path: Path, group: str | None, owner: str | None = None) -> None:
    gid = -1
    if group:
        try:
            import grp
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            gid = -1
    uid = _owner_uid(owner)
    for suffix, mode in (("", 0o640), ("-wal", 0o640), ("-shm", 0o660)):
        target = Path(str(path) + suffix)
        if not target.exists():
            continue
        if os.geteuid() != 0 and os.stat(target).st_uid != os.geteuid():
            continue   # another writer's file: it set the mode and group already
        os.chmod(target, mode)
        if gid >= 0 or uid >= 0:
            os.chown(target, uid, gid)


def _owner_uid(owner: str | None) -> int:
    """The uid to hand the files to: only root can, and only to a user that exists."""
    if not owner or os.geteuid() != 0:
        return -1
    try:
        import pwd
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        return -1


def open_readonly(path: Path, timeout: float = 10) -> sqlite3.Connection:
    """A viewer's or exporter's connection: it cannot write, whoever runs it.

    ``timeout``: seconds to wait for a lock (a viewer that must stay responsive waits less).
    """
    if not path.exists():
        raise StoreUnavailable(f"no database at {path} (is the sensor running? "
                               "pass --db PATH to read another file)")
    if not os.access(path, os.R_OK):
        raise StoreUnavailable(f"cannot read {path}: permission denied (join the "
                               "'netwarden' group or run as root)")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=timeout)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
    return conn
