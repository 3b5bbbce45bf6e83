"""Opening what a reader reads: the local store, or with ``--db URL`` a fleet's server.

A server is read through a database driver, which is never imported as root: started as root,
a reader needs ``--user NAME`` and becomes that user first (and proves it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from netwarden.config import Config, RemoteConfig, parse_remote_url
from netwarden.exits import EXIT_UNAVAILABLE
from netwarden.store.read_source import ReadSource


def open_source(config: Config, db_url: str | None, program: str,
                user: str | None = None) -> ReadSource:
    """The source, or SystemExit with the exit status after saying why on stderr."""
    if db_url is None:
        from netwarden.store.read_source import local_source
        from netwarden.store.sqlite_db import open_readonly
        return local_source(open_readonly(config.db_path), str(config.db_path))
    from netwarden.privileges import PrivilegeError, become_unprivileged
    try:
        become_unprivileged(program, user)
    except PrivilegeError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(exc.status) from None
    from netwarden.store.remote_db import RemoteError
    try:
        return ServerSource(db_url, config.remote).open()
    except RemoteError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE) from None


@dataclass(frozen=True)
class ServerSource:
    """A fleet's server as a viewer reads it: the URL of a reader role and [remote]'s
    password file and TLS settings. Opened after the viewer has dropped root."""

    url: str
    remote: RemoteConfig

    @property
    def label(self) -> str:
        return parse_remote_url(self.url).redacted()

    def open(self) -> ReadSource:
        """A connection, or RemoteError / ConfigError (an unreadable password file) saying
        why not (no password in it)."""
        from netwarden.store.remote_db import open_reader, reader_target
        return open_reader(reader_target(self.remote, self.url))
