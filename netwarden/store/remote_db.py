"""A connection to the remote server, through psycopg 3 or PyMySQL, behind one interface.

The drivers are imported only inside :func:`connect`, which the sink calls after it has
dropped root: no third-party database driver is ever loaded in a root process.

Errors are sorted into what the caller does about them: :class:`RemoteUnavailable` (down,
unreachable, wrong password, TLS refused: keep the rows, say why, try again later) and
:class:`RemoteSchemaError` (no schema, or one newer than this code: shipping would be wrong;
say so and wait for an administrator). Their messages never contain the password.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from netwarden.config import RemoteConfig, RemoteUrl, parse_remote_url, read_secret_file
from netwarden.store.dialects import MARIADB, POSTGRESQL, Dialect
from netwarden.store.read_source import ReadSource
from netwarden.store.remote_schema import REMOTE_LATEST, shipped_columns

#: MariaDB: rows, and bytes, in one INSERT (far below max_allowed_packet, 16 MiB by default).
MAX_ROWS_PER_STATEMENT = 5000
MAX_STATEMENT_BYTES = 4 << 20
DUPLICATE_KEY = 1062      # MariaDB's warning for a row INSERT IGNORE skipped
UNIQUE_VIOLATION = "23505"   # PostgreSQL's SQLSTATE for a key that is there already
NOT_IN_ENCODING = "22021"    # ... for a byte the encoding has no character for (NUL)
#: A column's SQLite type -> the PostgreSQL type COPY's binary format writes it as.
BINARY_COPY_TYPES = {"INTEGER": "int8", "REAL": "float8", "TEXT": "text"}


class RemoteError(RuntimeError):
    """Base of the remote sink's errors; the message is safe to log and show."""


class RemoteUnavailable(RemoteError):
    """The server cannot be reached or refused us now (network, password, TLS): retry."""


class RemoteSchemaError(RemoteError):
    """The server's schema is missing or newer than this netwarden: do not ship."""


@dataclass(frozen=True)
class RemoteTarget:
    url: RemoteUrl
    password: str = ""
    tls: str = "auto"
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    connect_timeout_s: float = 10.0

    @property
    def tls_mode(self) -> str:
        if self.tls != "auto":
            return self.tls
        return "disable" if self.url.is_loopback else "verify-full"

    @property
    def dialect(self) -> Dialect:
        return POSTGRESQL if self.url.scheme == "postgresql" else MARIADB

    def scrub(self, text: str) -> str:
        """``text`` with the password taken out (driver messages may quote a DSN)."""
        for secret in {self.password, self.url.password} - {""}:
            text = text.replace(secret, "***")
        return text


@dataclass(frozen=True)
class OutgoingRows:
    """One table's rows of a batch, made ready to send without a connection, so that the
    sink prepares the next batch while the server takes this one (sink/shipper.py)."""

    table: str
    columns: tuple[str, ...]
    rows: Sequence[Sequence[object]]
    statements: tuple[str, ...] = ()     # MariaDB: the INSERT IGNOREs, values written in


def outgoing_rows(dialect: Dialect, table: str, columns: Sequence[str],
                  rows: Sequence[Sequence[object]]) -> OutgoingRows:
    statements = tuple(literal_inserts(table, columns, rows)) if dialect is MARIADB else ()
    return OutgoingRows(table, tuple(columns), rows, statements)


class RemoteConnection:
    """One open connection: a transaction at a time, idempotent batch inserts."""

    def __init__(self, target: RemoteTarget, raw: Any, driver_errors: tuple[type, ...]) -> None:
        self.target = target
        self.dialect = target.dialect
        self._raw = raw
        self._driver_errors = driver_errors
        self._staged: set[str] = set()     # PostgreSQL: session tables made for COPY

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Driver errors become RemoteUnavailable, password removed."""
        try:
            yield
        except self._driver_errors as exc:
            raise RemoteUnavailable(self.target.scrub(f"{doing}: {_first_line(exc)}")) from None

    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return self._driver_errors

    @property
    def raw(self) -> Any:
        """The driver's connection (for a reader: see :func:`open_reader`)."""
        return self._raw

    def schema_version(self) -> int:
        """The server's schema version; RemoteSchemaError when there is none, or it is newer
        than this code's."""
        try:
            with self._raw.cursor() as cur:
                cur.execute("SELECT MAX(version) FROM schema_version")
                (version,) = cur.fetchone()
            self._raw.commit()
        except self._driver_errors as exc:
            self._raw.rollback()
            raise RemoteSchemaError(self.target.scrub(
                f"{self.target.url.redacted()} has no netwarden schema this role may read "
                f"({_first_line(exc)}); an administrator runs `netwarden sink --init-schema "
                "--admin-url URL` and the grants of `netwarden sink --print-grants`")) from None
        version = int(version or 0)
        if version > REMOTE_LATEST:
            raise RemoteSchemaError(
                f"the server's netwarden schema is version {version}, newer than this "
                f"netwarden's {REMOTE_LATEST}; upgrade netwarden on this host")
        if version < REMOTE_LATEST:
            raise RemoteSchemaError(
                f"the server's netwarden schema is version {version}, older than this "
                f"netwarden's {REMOTE_LATEST}; an administrator runs `netwarden sink "
                "--init-schema --admin-url URL` to migrate it")
        return version

    def insert(self, outgoing: OutgoingRows) -> None:
        """Insert one table's rows, skipping any that are there already (a resend)."""
        if not outgoing.rows:
            return
        with self._raw.cursor() as cur:
            if self.dialect is POSTGRESQL:
                self._copy_in(cur, outgoing.table, outgoing.columns, outgoing.rows)
            else:
                for statement in outgoing.statements:
                    cur.execute(statement)
                    self._refuse_warnings(cur, outgoing.table)

    def _copy_in(self, cur: Any, table: str, columns: Sequence[str],
                 rows: Sequence[Sequence[object]]) -> None:
        """PostgreSQL: COPY the rows straight into their table, in COPY's binary format.
        Parsing COPY's stream costs the server and psycopg a fraction of a VALUES list with
        a parameter per value; going straight in halves the server's work of staging them
        first; the binary format halves psycopg's of writing them as text
        (docs/sink-benchmark.md). COPY has no ON CONFLICT: when some of the rows are there
        already (a resend after a crash between the server's COMMIT and the cursor's move),
        the COPY fails as a whole, and the rows go through a session table and ``INSERT ...
        SELECT ... ON CONFLICT DO NOTHING`` instead, which keeps each exactly once."""
        q = self.dialect.ident
        names = ", ".join(q(c) for c in columns)
        types = staged_column_types(table)
        binary = [BINARY_COPY_TYPES[types[c].upper()] for c in columns]
        rows = self._try_copy(cur, f"COPY {q(table)} ({names}) FROM STDIN", rows, binary)
        if rows is None:
            return
        staged = q(f"incoming_{table}")
        if table not in self._staged:
            defs = ", ".join(f"{q(c)} {self.dialect.column_type(types[c])}" for c in columns)
            # A session's own table, emptied by every COMMIT: nothing of it outlives a batch.
            cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staged} ({defs}) "
                        "ON COMMIT DELETE ROWS")
            self._staged.add(table)
        if self._try_copy(cur, f"COPY {staged} ({names}) FROM STDIN", rows, binary) is not None:
            raise RemoteSchemaError(f"{table}: rows a session table refused as duplicates")
        cur.execute(f"INSERT INTO {q(table)} ({names}) SELECT {names} FROM {staged} "
                    "ON CONFLICT DO NOTHING")

    def _try_copy(self, cur: Any, statement: str, rows: Sequence[Sequence[object]],
                  binary: Sequence[str] = ()) -> Sequence[Sequence[object]] | None:
        """COPY ``rows`` (in binary with the column types ``binary``, else as text); None
        when done, else the rows to insert some other way because some are there already
        (the COPY is undone)."""
        cur.execute("SAVEPOINT copy_in")
        try:
            _copy_rows(cur, statement + (" (FORMAT BINARY)" if binary else ""), rows, binary)
        except (TypeError, ValueError, OverflowError):
            # A value the binary format cannot carry as its column's type (SQLite lets a
            # column hold any type): as text, the server converts it or names the problem.
            cur.execute("ROLLBACK TO SAVEPOINT copy_in")
            return self._try_copy(cur, statement, rows)
        except self._driver_errors as exc:
            cur.execute("ROLLBACK TO SAVEPOINT copy_in")
            state = getattr(exc, "sqlstate", None)
            if state == UNIQUE_VIOLATION:
                return rows
            if state != NOT_IN_ENCODING and "NUL" not in str(exc):
                raise
            # PostgreSQL text cannot hold NUL (a DNS label may): such rows carry U+2400
            # instead. Rare, so only then is every value looked at.
            return self._try_copy(cur, statement,
                                  [tuple(_without_nul(v) for v in row) for row in rows], binary)
        cur.execute("RELEASE SAVEPOINT copy_in")
        return None

    def _refuse_warnings(self, cur: Any, table: str) -> None:
        """INSERT IGNORE downgrades every error to a warning: only a skipped duplicate is
        expected; anything else (a truncated value, a bad type) fails the batch."""
        cur.execute("SHOW WARNINGS")
        problems = [row for row in cur.fetchall() if int(row[1]) != DUPLICATE_KEY]
        if problems:
            level, code, message = problems[0][:3]
            raise RemoteSchemaError(f"{table}: the server changed a row ({level} {code}: "
                                    f"{message}); nothing of this batch was kept")

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._raw.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall()) if cur.description else []

    def commit(self) -> None:
        self._raw.commit()

    def rollback(self) -> None:
        self._staged.clear()      # a table made in the rolled-back transaction is gone
        try:
            self._raw.rollback()
        except self._driver_errors:
            pass

    def close(self) -> None:
        try:
            self._raw.close()
        except self._driver_errors:
            pass


def remote_target(remote: RemoteConfig, url: str, password_key: str,
                  password_file: str) -> RemoteTarget:
    """How to reach ``url`` with [remote]'s TLS settings and the password kept in
    ``password_file`` (if any; else the URL's). ConfigError names ``password_key`` when the
    file cannot be read."""
    password = read_secret_file(password_key, password_file) if password_file else ""
    return RemoteTarget(parse_remote_url(url), password, remote.tls, remote.ca_file,
                        remote.cert_file, remote.key_file, remote.connect_timeout_s)


def reader_target(remote: RemoteConfig, url: str) -> RemoteTarget:
    """How a viewer reaches ``url``: a reader role, its password from [remote]
    reader_password_file."""
    return remote_target(remote, url, "[remote] reader_password_file",
                         remote.reader_password_file)


def open_reader(target: RemoteTarget) -> ReadSource:
    """A viewer's connection to the server (a reader role): autocommit, schema checked."""
    remote = connect(target)
    try:
        remote.schema_version()
        remote.raw.autocommit = True
    except RemoteError:
        remote.close()
        raise
    return ReadSource(remote.raw, remote.dialect, target.url.redacted(), remote.driver_errors)


def _copy_rows(cur: Any, statement: str, rows: Sequence[Sequence[object]],
               binary: Sequence[str]) -> None:
    with cur.copy(statement) as copy:
        if binary:
            copy.set_types(binary)
        for row in rows:
            copy.write_row(row)


NUL_STAND_IN = "\u2400"      # SYMBOL FOR NULL


def _without_nul(value: object) -> object:
    return value.replace("\0", NUL_STAND_IN) if isinstance(value, str) else value


@functools.cache
def staged_column_types(table: str) -> dict[str, str]:
    """Each column's SQLite type for ``table`` on the server (its COPY staging table)."""
    columns = shipped_columns()[table]
    return {"source_id": "TEXT", **{c.name: c.kind for c in columns}}


#: MySQL/MariaDB string literal escapes (the server's default sql_mode, which the sink sets:
#: backslash escapes on).
_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n",
                          "\r": "\\r", "\x1a": "\\Z"})


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):            # bool too: SQLite stores them as integers
        return str(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise RemoteSchemaError(f"{value!r} cannot be stored on the server")
        return repr(value)
    return "'" + str(value).translate(_ESCAPES) + "'"


def literal_inserts(table: str, columns: Sequence[str],
                    rows: Sequence[Sequence[object]]) -> Iterator[str]:
    """MariaDB: multi-row INSERT IGNORE statements with the values written in (escaped
    here, in one pass per row, rather than PyMySQL's escaping of each parameter)."""
    head = MARIADB.idempotent_insert(table, columns, 0, ())     # "... VALUES " and no row
    values: list[str] = []
    size = len(head)
    for row in rows:
        text = "(" + ",".join([_literal(v) for v in row]) + ")"
        if values and (len(values) >= MAX_ROWS_PER_STATEMENT
                       or size + len(text) > MAX_STATEMENT_BYTES):
            yield head + ",".join(values)
            values, size = [], len(head)
        values.append(text)
        size += len(text) + 1
    if values:
        yield head + ",".join(values)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def connect(target: RemoteTarget) -> RemoteConnection:
    """Open a connection in a transaction; RemoteUnavailable says why it cannot."""
    if target.url.scheme == "postgresql":
        return _connect_postgresql(target)
    return _connect_mariadb(target)


def _connect_postgresql(target: RemoteTarget) -> RemoteConnection:
    import psycopg
    url = target.url
    options: dict[str, Any] = dict(
        host=url.host, port=url.port or 5432, user=url.user, dbname=url.database,
        password=target.password or url.password or None, sslmode=target.tls_mode,
        connect_timeout=max(1, int(target.connect_timeout_s)),
        application_name="netwarden-sink", autocommit=False)
    for name, path in (("sslrootcert", target.ca_file), ("sslcert", target.cert_file),
                       ("sslkey", target.key_file)):
        if path:
            options[name] = path
    try:
        raw = psycopg.connect(**options)
    except psycopg.Error as exc:
        raise RemoteUnavailable(target.scrub(
            f"cannot connect to {url.redacted()}: {_first_line(exc)}")) from None
    return RemoteConnection(target, raw, (psycopg.Error,))


def _tls_context(target: RemoteTarget) -> ssl.SSLContext | None:
    mode = target.tls_mode
    if mode == "disable":
        return None
    context = ssl.create_default_context(cafile=target.ca_file or None)
    if mode in ("verify-ca", "require"):
        context.check_hostname = False
    if mode == "require":
        context.verify_mode = ssl.CERT_NONE
    if target.cert_file:
        context.load_cert_chain(target.cert_file, target.key_file or None)
    return context


def _connect_mariadb(target: RemoteTarget) -> RemoteConnection:
    import pymysql
    url = target.url
    context = _tls_context(target)
    try:
        raw = pymysql.connect(
            host=url.host, port=url.port or 3306, user=url.user,
            password=target.password or url.password, database=url.database,
            connect_timeout=target.connect_timeout_s, ssl=context, autocommit=False,
            charset="utf8mb4",
            init_command="SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
                         "time_zone = '+00:00'")
        if context is not None:
            _require_tls(raw)
    except pymysql.Error as exc:
        raise RemoteUnavailable(target.scrub(
            f"cannot connect to {url.redacted()}: {_first_line(exc)}")) from None
    return RemoteConnection(target, raw, (pymysql.Error,))


def _require_tls(raw: Any) -> None:
    """PyMySQL goes on in clear text when the server offers no TLS: refuse that."""
    with raw.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    if not row or not row[1]:
        raw.close()
        import pymysql
        raise pymysql.err.OperationalError(2026, "the server offers no TLS, and [remote] tls "
                                                 "requires it")
