"""PostgreSQL for the fault scenarios: scenario databases on the shared server, a
private throwaway cluster that a scenario may stop and start, and psql queries.

The shared server (127.0.0.1:5432, role postgres, as the tests use) also runs other
people's tests, so nothing here ever stops or reconfigures it: scenarios that take
PostgreSQL down run their own cluster, initialised in a temporary directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# psql's field separator: a control character no value written by the scenarios holds.
SEPARATOR = "\x1f"


@dataclass(frozen=True)
class PgServer:
    """Where a PostgreSQL server listens (always on 127.0.0.1)."""

    port: int
    user: str = "postgres"

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@{HOST}:{self.port}/{database}"


SHARED = PgServer(int(os.environ.get("FAULTS_PG_PORT", "5432")))


def free_port(preferred: int | None = None) -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now, `preferred` when it is free."""
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, candidate))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free TCP port on 127.0.0.1")


def psql(server: PgServer, database: str, sql: str, timeout: float = 60) -> list[list[str]]:
    """Runs `sql` (read from stdin, so id lists of any length fit) and returns the rows."""
    command = [
        "psql",
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-F",
        SEPARATOR,
        "-h",
        HOST,
        "-p",
        str(server.port),
        "-U",
        server.user,
        "-d",
        database,
        "-f",
        "-",
    ]
    env = dict(os.environ, PGCONNECT_TIMEOUT="5")
    env.pop("PGPASSWORD", None)
    done = subprocess.run(command, input=sql, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"psql on {database} failed: {done.stderr.strip()}")
    return [line.split(SEPARATOR) for line in done.stdout.splitlines() if line]


def id_array(ids) -> str:
    """A bigint[] literal of `ids` for `= ANY (...)`."""
    return "'{" + ",".join(str(int(i)) for i in ids) + "}'::bigint[]"


@contextlib.contextmanager
def scenario_database(server: PgServer, name: str):
    """A fresh empty database (dropped first if a crashed run left it), dropped at the end;
    yields its URL. `WITH (FORCE)` also ends sessions a killed server left behind."""
    if not name.startswith("tickets_faults_"):
        raise ValueError(f"scenario databases are named tickets_faults_*, not {name}")
    psql(server, "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(server, "postgres", f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield server.url(name)
    finally:
        with contextlib.suppress(Exception):
            psql(server, "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_bin() -> Path:
    """The directory of initdb and pg_ctl: $PG_BIN, else the newest Debian install, else PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    installed = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if installed:
        return Path(installed[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("initdb not found: install PostgreSQL's server package or set PG_BIN")


class PrivateCluster:
    """A PostgreSQL cluster of our own in a temporary directory, on a free port of
    127.0.0.1 with its socket in that directory, so that stopping it disturbs nobody.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` OS user.
    Use it as a context manager: leaving stops it and removes its directory (its log is
    copied into the run directory first)."""

    def __init__(self, run_dir: Path, name: str, preferred_port: int = 55432):
        self.run_dir = run_dir
        self.name = name
        self.server = PgServer(free_port(preferred_port))
        self.bin = _postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix=f"tickets-faults-{name}-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.running = False

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def _run(self, *command: str, timeout: float = 120) -> None:
        done = subprocess.run(self._as_owner(*command), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(command[0]).name} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}"
            )

    def __enter__(self) -> PrivateCluster:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.server.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        )
        return self

    def start(self) -> None:
        options = f"-c listen_addresses={HOST} -p {self.server.port} -c unix_socket_directories={self.root}"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def __exit__(self, *_exc) -> None:
        try:
            if self.running:
                with contextlib.suppress(Exception):
                    self.stop("immediate")
            with contextlib.suppress(OSError):
                shutil.copyfile(self.log, self.run_dir / f"{self.name}-postgres.log")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
