"""Real PostgreSQL and MariaDB servers for a test: Debian's packages, a temporary data
directory, a free loopback port, started here and stopped here. No mocks.

Each server runs as its package's system user (PostgreSQL refuses to run as root; MariaDB
is told to switch). The administrator connects over the server's own Unix socket as its
superuser; hosts and readers log in over TCP on 127.0.0.1 with a password.
"""

from __future__ import annotations

import abc
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADMIN_DATABASE = "netwarden"
#: The schema's owner: may create tables and roles, is no superuser.
ADMIN_ROLE, ADMIN_PASSWORD = "nwadmin", "admin-secret-7"


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _give_to(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *[os.path.join(root, n) for n in dirs + files]]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start:\n{log.read_text()[-3000:]}")


@dataclass
class _Server(abc.ABC):
    """What both servers share: a data directory owned by the server's user, a loopback
    port kept across restarts, the process, stop and removal."""

    directory: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    dialect = ""
    user = ""              # the package's system user the server runs as
    scheme = ""

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o755)
        _give_to(self.directory, self.user)
        subprocess.run(self.init_command(), check=True, capture_output=True)
        self.port = free_loopback_port()

    def start(self) -> None:
        """Start (again: the data directory and port are kept across a stop)."""
        if not self.data.exists():
            self.init()
        _give_to(self.directory, self.user)
        self.proc = subprocess.Popen(self.start_command(), stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"), start_new_session=True)
        _wait_port(self.port, self.proc, self.log)
        self.wait_ready()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # To the whole group: runuser does not pass signals on.
            os.killpg(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(timeout=60)
                self.wait_gone()
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, user: str, dbname: str = ADMIN_DATABASE) -> str:
        return f"{self.scheme}://{user}@127.0.0.1:{self.port}/{dbname}"

    def admin_url(self, dbname: str = ADMIN_DATABASE) -> str:
        return self.url(ADMIN_ROLE, dbname)

    # ---- per server ----
    stop_signal = signal.SIGTERM

    @abc.abstractmethod
    def init_command(self) -> list[str]:
        """What makes the data directory."""

    @abc.abstractmethod
    def start_command(self) -> list[str]:
        """What runs the server on self.port."""

    def wait_ready(self) -> None:
        """Until it answers (the port alone may open before it does)."""

    def wait_gone(self) -> None:
        """Until it has let go of its files after exiting."""


@dataclass
class PostgresServer(_Server):
    bindir: Path = field(default_factory=lambda: Path(sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]))
    max_connections: int = 300     # a fleet simulation keeps one per simulated host

    dialect = "postgresql"
    user = "postgres"
    scheme = "postgresql"
    stop_signal = signal.SIGINT      # fast shutdown

    def init_command(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--", str(self.bindir / "initdb"),
                "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"]

    def start_command(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--", str(self.bindir / "postgres"),
                "-D", str(self.data), "-p", str(self.port), "-k", str(self.directory),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", f"max_connections={self.max_connections}"]

    def wait_ready(self) -> None:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.admin(dbname="postgres").close()
                return
            except Exception:  # noqa: BLE001 - "starting up" until it is not
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL not ready: {self.log.read_text()[-2000:]}")

    def wait_gone(self) -> None:
        """Until the postmaster has removed its pid file (its port is free again)."""
        deadline = time.time() + 30
        while (self.data / "postmaster.pid").exists() and time.time() < deadline:
            time.sleep(0.05)

    def admin(self, dbname: str = ADMIN_DATABASE) -> Any:
        import psycopg
        return psycopg.connect(host=str(self.directory), port=self.port, user="postgres",
                               dbname=dbname, autocommit=True)

    def create_database(self, name: str = ADMIN_DATABASE) -> None:
        """The database and its owner, ADMIN_ROLE (CREATEROLE, no superuser)."""
        with self.admin(dbname="postgres") as conn:
            conn.execute(f"CREATE ROLE {ADMIN_ROLE} LOGIN CREATEROLE "
                         f"PASSWORD '{ADMIN_PASSWORD}'")
            conn.execute(f'CREATE DATABASE "{name}" OWNER {ADMIN_ROLE}')
            # Nothing by default: the printed grants must give hosts what the sink needs.
            conn.execute(f'REVOKE TEMPORARY ON DATABASE "{name}" FROM PUBLIC')
        write_admin_password(self.directory)

    def set_password(self, role: str, password: str) -> None:
        with self.admin() as conn:
            conn.execute(f"ALTER ROLE \"{role}\" PASSWORD '{password}'")

    def run_script(self, sql: str, dbname: str = ADMIN_DATABASE) -> None:
        with self.admin(dbname) as conn:
            conn.execute(sql)


@dataclass
class MariadbServer(_Server):
    dialect = "mariadb"
    user = "mysql"
    scheme = "mariadb"

    @property
    def socket_path(self) -> Path:
        return self.directory / "mysqld.sock"

    def init_command(self) -> list[str]:
        return ["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={self.data}",
                "--auth-root-authentication-method=normal", "--skip-test-db"]

    def start_command(self) -> list[str]:
        return ["mariadbd", "--no-defaults", "--user=mysql", f"--datadir={self.data}",
                f"--port={self.port}", "--bind-address=127.0.0.1",
                f"--socket={self.socket_path}", f"--pid-file={self.directory / 'mysqld.pid'}",
                "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=2",
                "--max-connections=300", f"--log-error={self.log}"]

    def admin(self, dbname: str | None = ADMIN_DATABASE) -> Any:
        import pymysql
        return pymysql.connect(unix_socket=str(self.socket_path), user="root",
                               database=dbname, autocommit=True)

    def _as_root(self, statements: list[str], dbname: str | None = ADMIN_DATABASE) -> None:
        conn = self.admin(dbname)
        try:
            for statement in statements:
                conn.cursor().execute(statement)
        finally:
            conn.close()

    def create_database(self, name: str = ADMIN_DATABASE) -> None:
        self._as_root([f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
                       f"CREATE USER '{ADMIN_ROLE}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'",
                       f"GRANT ALL ON *.* TO '{ADMIN_ROLE}'@'%' WITH GRANT OPTION"], None)
        write_admin_password(self.directory)

    def set_password(self, role: str, password: str) -> None:
        self._as_root([f"ALTER USER '{role}'@'%' IDENTIFIED BY '{password}' ACCOUNT UNLOCK"])

    def run_script(self, sql: str, dbname: str = ADMIN_DATABASE) -> None:
        self._as_root(split_script(sql), dbname)


def admin_password_file(directory: Path) -> Path:
    return directory / "admin-password"


def write_admin_password(directory: Path) -> None:
    """Readable by anyone: the sink reads it after dropping to an unprivileged test user."""
    path = admin_password_file(directory)
    path.write_text(ADMIN_PASSWORD + "\n")
    os.chmod(path, 0o644)


def split_script(sql: str) -> list[str]:
    """A printed script's statements (each ends with ';' at the end of a line)."""
    statements, current = [], []
    for line in sql.splitlines():
        if line.startswith("--") or not line.strip():
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    return statements


def _netwarden(*args: str) -> str:
    import sys
    repo = Path(__file__).resolve().parent.parent.parent
    done = subprocess.run([sys.executable, "-m", "netwarden", *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(repo)))
    if done.returncode != 0:
        raise RuntimeError(f"netwarden {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done.stdout


def provision(dialect: str) -> PostgresServer | MariadbServer:
    """A started server with the netwarden schema, applied as an administrator would:
    `netwarden sink --init-schema` (dropping root to nobody, as the CLI insists)."""
    import tempfile
    cls = PostgresServer if dialect == "postgresql" else MariadbServer
    # Not under pytest's tmp (mode 0700): the server's own user must reach its directory.
    srv = cls(Path(tempfile.mkdtemp(prefix=f"netwarden-{dialect}-")))
    srv.start()
    try:
        srv.create_database()
        _netwarden("sink", "--init-schema", "--admin-url", srv.admin_url(), "--user", "nobody",
                   "--admin-password-file", str(admin_password_file(srv.directory)))
    except BaseException:
        srv.remove()
        raise
    return srv


def add_roles(srv: PostgresServer | MariadbServer, host_role: str, host_password: str,
              reader_role: str, reader_password: str) -> None:
    """Exactly what `netwarden sink --print-grants` prints, then the passwords."""
    srv.run_script(_netwarden("sink", "--print-grants", srv.dialect, "--role", host_role,
                              "--reader-role", reader_role))
    srv.set_password(host_role, host_password)
    srv.set_password(reader_role, reader_password)


@contextmanager
def provisioned(dialect: str, host_role: str, host_password: str, reader_role: str,
                reader_password: str) -> Iterator[PostgresServer | MariadbServer]:
    """A server with the schema and one host's and one reader's roles; removed afterwards."""
    srv = provision(dialect)
    try:
        add_roles(srv, host_role, host_password, reader_role, reader_password)
        yield srv
    finally:
        srv.remove()
