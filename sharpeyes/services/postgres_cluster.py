"""A real PostgreSQL primary with a streaming hot standby, on free loopback ports, for tests and scenarios.

``PostgresCluster(folder).start()`` runs ``initdb`` for a primary (``wal_level=replica``, WAL senders,
trust for loopback connections and replication), starts it, creates the database ``sharpeyes``,
clones it with ``pg_basebackup -R`` (the clone is a standby that streams from the primary) and
starts the clone as a hot standby. ``primary_url`` and ``replica_url`` are SQLAlchemy URLs in the
project's form (``postgresql+psycopg://postgres@127.0.0.1:PORT/sharpeyes``); ``primary_dsn`` and
``replica_dsn`` are the same for psycopg. The servers are driven with ``pg_ctl``, which waits for a
server to accept connections, stops it (``fast``, or ``immediate`` for a crash) and leaves no
process behind.

A full start (initdb, both servers running, the standby streaming) took 2.0-2.8 s on the
development machine (2 cores, PostgreSQL 15; six runs): initdb 0.9-1.2 s, the primary's start 0.12 s,
CREATE DATABASE 0.3 s, the base backup 0.4-1.0 s, the standby's start 0.12 s. A stop takes 0.3 s.
The clusters are for tests: ``fsync`` is off and nothing syncs its files, so a crash of the
machine (not of a server) may lose what they hold.

Servers refuse to run as root. Run as root, the cluster's processes run as the OS user ``postgres``
(``runuser``), in a folder that user owns: ``folder/postgres`` where that user can reach it, or
else a private folder under the system's temporary directory that ``stop()`` removes (pytest's
``tmp_path`` is root's, mode 0700). Otherwise they run as the calling user, in ``folder/postgres``.
Each ``start()`` begins afresh there; ``stop()`` also runs at interpreter exit, should a caller
forget it (the servers are daemons of their own, not children that die with this process).

The binaries come from ``$SHARPEYES_PG_BIN``, the newest ``/usr/lib/postgresql/*/bin`` (Debian's
``postgresql`` package; ``scripts/ensure-system.sh`` installs it), ``pg_config --bindir``, or the PATH.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from broker.netutil import free_port, port_accepts

PG_BIN_ENV = "SHARPEYES_PG_BIN"
DATABASE = "sharpeyes"
SUPERUSER = "postgres"
SERVER_OS_USER = "postgres"  # who runs the servers when we are root
Which = Literal["primary", "replica"]

_INSTALL_HINT = (
    "PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) were not found. Install them with "
    "`sudo apt-get install -y postgresql` (Debian/Ubuntu), run `make test` (scripts/ensure-system.sh "
    f"installs them), or point ${PG_BIN_ENV} at the folder that holds them."
)


class PostgresClusterError(RuntimeError):
    """A binary is missing, or a server did not start or stop; the message carries the log's tail."""


def find_pg_bin(bin_dir: Path | str | None = None) -> Path:
    """The folder with ``initdb``, ``pg_ctl`` and ``pg_basebackup`` (see the module's docstring)."""
    candidates: list[Path] = []
    if bin_dir is not None:
        candidates.append(Path(bin_dir))
    elif os.environ.get(PG_BIN_ENV):
        candidates.append(Path(os.environ[PG_BIN_ENV]))
    else:
        debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name))
        candidates += reversed(debian)
        pg_config = shutil.which("pg_config")
        if pg_config is not None:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        initdb = shutil.which("initdb")
        if initdb is not None:
            candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if all((folder / tool).is_file() and os.access(folder / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "pg_basebackup")):
            return folder
    where = f" (looked in {', '.join(str(c) for c in candidates)})" if candidates else ""
    raise PostgresClusterError(_INSTALL_HINT + where)


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit()) or (0,)


def parse_lsn(lsn: str) -> int:
    """A WAL position as PostgreSQL writes it (``16/B374D848``) as a byte offset."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"


class PostgresCluster:
    """A primary and one streaming hot standby (see the module's docstring). Use it as a context
    manager, or call ``start()`` and, always, ``stop()``."""

    def __init__(
        self,
        folder: Path | str,
        host: str = "127.0.0.1",
        *,
        database: str = DATABASE,
        bin_dir: Path | str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.folder = Path(folder)
        self.host = host
        self.database = database
        self.bin_dir = find_pg_bin(bin_dir)
        self.start_timeout = start_timeout
        self.primary_port = 0
        self.replica_port = 0
        self._as_root = os.geteuid() == 0
        self._data_root: Path | None = None
        self._owns_data_root = False
        self._started = False

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def primary_url(self) -> str:
        """SQLAlchemy URL of the primary's database (read-write)."""
        return self._url("postgresql+psycopg", self.primary_port)

    @property
    def replica_url(self) -> str:
        """SQLAlchemy URL of the standby's copy of the database (read-only: a hot standby)."""
        return self._url("postgresql+psycopg", self.replica_port)

    @property
    def primary_dsn(self) -> str:
        """The primary for psycopg/libpq (``postgresql://``)."""
        return self._url("postgresql", self.primary_port)

    @property
    def replica_dsn(self) -> str:
        return self._url("postgresql", self.replica_port)

    def _url(self, scheme: str, port: int, database: str | None = None) -> str:
        if not port:
            raise PostgresClusterError("the cluster is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{SUPERUSER}@{host}:{port}/{database or self.database}"

    def create_database(self, name: str) -> tuple[str, str]:
        """Another database on the primary, once the standby has it too: its (primary, replica) SQLAlchemy URLs."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and _ only")
        self.query(f'CREATE DATABASE "{name}"', database="postgres")
        self.wait_until_replicated()
        return (self._url("postgresql+psycopg", self.primary_port, name),
                self._url("postgresql+psycopg", self.replica_port, name))

    @property
    def data_root(self) -> Path:
        """The folder holding ``primary/``, ``replica/`` and their logs."""
        if self._data_root is None:
            raise PostgresClusterError("the cluster is not started")
        return self._data_root

    def data_dir(self, which: Which) -> Path:
        return self.data_root / which

    def log_path(self, which: Which) -> Path:
        return self.data_root / f"{which}.log"

    def log_tail(self, which: Which, lines: int = 30) -> str:
        return _tail(self.log_path(which), lines)

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> PostgresCluster:
        """initdb and start the primary, create the database, clone the standby and start it."""
        if self._started:
            return self
        self._data_root = self._prepare_data_root()
        self._started = True
        atexit.register(self.stop)
        try:
            self._init_primary()
            self.primary_port = self._start_new("primary")
            self.query(f'CREATE DATABASE "{self.database}"', database="postgres")
            self._clone_replica()
            self.replica_port = self._start_new("replica")
            self.wait_until_replicated(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers (no process stays behind) and remove a private data folder; safe twice."""
        if self._data_root is None:
            return
        servers: tuple[Which, ...] = ("replica", "primary")
        for which in servers:
            self._stop_server(which, "fast")
        if self._owns_data_root:
            shutil.rmtree(self._data_root, ignore_errors=True)
        self._data_root = None
        self._started = False
        atexit.unregister(self.stop)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def stop_replica(self) -> None:
        """Stop the standby (``pg_ctl stop -m fast``); its port refuses connections until start_replica()."""
        self._stop_server("replica", "fast")

    def start_replica(self) -> None:
        """Start the stopped standby again on its port; it catches up from the primary's WAL."""
        self._start("replica", self.replica_port)

    def kill_primary(self) -> None:
        """Crash the primary (``pg_ctl stop -m immediate``: no checkpoint, every backend gone at once)."""
        self._stop_server("primary", "immediate")

    def start_primary(self) -> None:
        """Start the primary again (after kill_primary(); it recovers from its WAL)."""
        self._start("primary", self.primary_port)

    def running(self, which: Which) -> bool:
        return self._postmaster_pid(which) is not None

    # -- replication -------------------------------------------------------------------------------

    def pause_replay(self) -> None:
        """The standby keeps receiving WAL but stops applying it (``pg_wal_replay_pause()``): it falls behind."""
        self.query("SELECT pg_wal_replay_pause()", on="replica")

    def resume_replay(self) -> None:
        self.query("SELECT pg_wal_replay_resume()", on="replica")

    def replication_lag_bytes(self) -> int:
        """How many bytes of the primary's WAL the standby has not replayed yet (0: it has everything)."""
        current = self.query("SELECT pg_current_wal_lsn()::text")[0][0]
        replayed = self.query("SELECT pg_last_wal_replay_lsn()::text", on="replica")[0][0]
        if replayed is None:
            return parse_lsn(current)
        return max(0, parse_lsn(current) - parse_lsn(replayed))

    def wait_until_replicated(self, timeout: float = 30.0) -> None:
        """Block until the standby has replayed everything the primary had written when this was called."""
        target = parse_lsn(self.query("SELECT pg_current_wal_lsn()::text")[0][0])
        deadline = time.monotonic() + timeout
        while True:
            replayed = self.query("SELECT pg_last_wal_replay_lsn()::text", on="replica")[0][0]
            if replayed is not None and parse_lsn(replayed) >= target:
                return
            if time.monotonic() >= deadline:
                raise PostgresClusterError(
                    f"the standby did not replay up to the primary's WAL position within {timeout:.0f} s "
                    f"(replayed {replayed}); --- {self.log_path('replica')} (tail) ---\n{self.log_tail('replica')}")
            time.sleep(0.02)

    def query(self, sql: str, params: Sequence[Any] = (), *, on: Which = "primary",
              database: str | None = None) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit) as the superuser on the primary or the standby; its rows."""
        import psycopg

        port = self.primary_port if on == "primary" else self.replica_port
        with psycopg.connect(host=self.host, port=port, user=SUPERUSER, dbname=database or self.database,
                             autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description is not None else []

    # -- internals ---------------------------------------------------------------------------------

    def _prepare_data_root(self) -> Path:
        """``folder/postgres``, emptied: every start() is a fresh cluster."""
        self._owns_data_root = False
        root = self.folder / "postgres"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        if not self._as_root:
            return root
        # The server's OS user must own its data folder and reach it through every parent folder;
        # pytest's temporary folders (mode 0700, root's) are out of its reach.
        shutil.chown(root, SERVER_OS_USER, SERVER_OS_USER)
        if subprocess.run(self._as_server(["test", "-w", str(root)]), check=False).returncode == 0:
            return root
        root.rmdir()
        private = Path(tempfile.mkdtemp(prefix="sharpeyes-postgres-"))
        shutil.chown(private, SERVER_OS_USER, SERVER_OS_USER)
        (self.folder / "postgres-data-folder.txt").write_text(f"{private}\n", encoding="utf-8")
        self._owns_data_root = True
        return private

    def _as_server(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", SERVER_OS_USER, "--", *argv] if self._as_root else argv

    def _run(self, argv: list[str], what: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(self._as_server(argv), cwd=self.data_root, capture_output=True, text=True,
                                  check=False, timeout=timeout or self.start_timeout,
                                  env=dict(os.environ, LC_ALL="C", PGCONNECT_TIMEOUT="5"))
        except FileNotFoundError as exc:
            raise PostgresClusterError(f"{what}: {exc}") from None
        except subprocess.TimeoutExpired:
            raise PostgresClusterError(f"{what} did not finish within {timeout or self.start_timeout:.0f} s") from None
        return done

    def _tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _init_primary(self) -> None:
        data = self.data_dir("primary")
        done = self._run([self._tool("initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                          "--no-locale", "--no-sync"], "initdb")
        if done.returncode != 0:
            raise PostgresClusterError(f"initdb failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
        nets = ["127.0.0.1/32", "::1/128"]
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            nets.append(f"{self.host}/{128 if ':' in self.host else 32}")
        hba = "".join(f"host {db} {SUPERUSER} {net} trust\n" for db in ("all", "replication") for net in nets)
        self._write_as_server(data / "pg_hba.conf", "# sharpeyes/services/postgres_cluster.py: trust on loopback\n" + hba)
        settings = {
            "listen_addresses": f"'{self.host}'",
            "unix_socket_directories": "''",  # TCP only: no socket in /var/run/postgresql to share
            "wal_level": "replica",
            "max_wal_senders": "5",
            "wal_keep_size": "'256MB'",  # a standby stopped for a while can still catch up
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "max_connections": "60",
            "shared_buffers": "'32MB'",
            "fsync": "off",  # a test cluster: speed over surviving a power loss
            "full_page_writes": "off",
            "logging_collector": "off",
            "log_line_prefix": "'%m [%p] '",
        }
        self._append_as_server(data / "postgresql.conf", "\n# sharpeyes/services/postgres_cluster.py\n"
                               + "".join(f"{key} = {value}\n" for key, value in settings.items()))

    def _clone_replica(self) -> None:
        data = self.data_dir("replica")
        done = self._run([self._tool("pg_basebackup"), "-h", self.host, "-p", str(self.primary_port), "-U", SUPERUSER,
                          "-D", str(data), "-R", "-X", "stream", "-c", "fast", "--no-sync", "-w"], "pg_basebackup")
        if done.returncode != 0:
            raise PostgresClusterError(f"pg_basebackup failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")

    def _write_as_server(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        if self._as_root:
            shutil.chown(path, SERVER_OS_USER, SERVER_OS_USER)

    def _append_as_server(self, path: Path, text: str) -> None:
        with path.open("a", encoding="utf-8") as out:
            out.write(text)

    def _set_port(self, which: Which, port: int) -> None:
        # Appended: the last setting of a name wins. The standby's copy still names the primary's port.
        self._append_as_server(self.data_dir(which) / "postgresql.conf", f"port = {port}\n")

    def _start_new(self, which: Which) -> int:
        """The first start: on a fresh free port, moving to another when someone took it meanwhile."""
        for attempt in range(3):
            port = free_port(self.host)
            self._set_port(which, port)
            try:
                self._start(which, port)
                return port
            except PostgresClusterError as exc:
                if attempt < 2 and "already in use" in str(exc):
                    continue
                raise
        raise AssertionError("unreachable")

    def _start(self, which: Which, port: int) -> None:
        if self.running(which):
            return
        log = self.log_path(which)
        started = time.monotonic()
        done = self._run([self._tool("pg_ctl"), "start", "-D", str(self.data_dir(which)), "-l", str(log), "-w",
                          "-t", str(int(self.start_timeout))], f"pg_ctl start ({which})", timeout=self.start_timeout + 10)
        if done.returncode != 0:
            self._stop_server(which, "immediate")
            raise PostgresClusterError(
                f"the {which} did not start on {self.host}:{port} within {self.start_timeout:.0f} s "
                f"(pg_ctl exit {done.returncode}: {done.stdout.strip()} {done.stderr.strip()})\n"
                f"--- {log} (tail) ---\n{self.log_tail(which)}")
        while not port_accepts(self.host, port, timeout=0.5):  # pg_ctl -w waited for "ready"; belt and braces
            if time.monotonic() - started > self.start_timeout:
                self._stop_server(which, "immediate")
                raise PostgresClusterError(f"the {which} does not accept connections on {self.host}:{port}\n"
                                           f"--- {log} (tail) ---\n{self.log_tail(which)}")
            time.sleep(0.05)

    def _postmaster_pid(self, which: Which) -> int | None:
        if self._data_root is None:
            return None
        try:
            pid = int((self.data_dir(which) / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        return pid

    def _stop_server(self, which: Which, mode: Literal["fast", "immediate"]) -> None:
        pid = self._postmaster_pid(which)
        if pid is None:
            return
        self._run([self._tool("pg_ctl"), "stop", "-D", str(self.data_dir(which)), "-m", mode, "-w", "-t", "30"],
                  f"pg_ctl stop ({which})", timeout=40)
        if self._postmaster_pid(which) is None:
            return
        # pg_ctl could not stop it: kill the postmaster; its backends exit when they see it gone.
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while self._postmaster_pid(which) == pid and time.monotonic() < deadline:
            time.sleep(0.05)
