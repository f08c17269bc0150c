"""The `tickets` process under test: started from the release binary with a fixed JWT
secret and staff key on a free port of 127.0.0.1, logging JSON lines to a file of the
run directory, and signalled or killed by its own pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from client import PASSWORD, STAFF_KEY, Client, SetupError
from cluster import HOST, free_port

REPO = Path(__file__).resolve().parents[2]
# Where cargo puts it: CARGO_TARGET_DIR (relative to the repository, where `just` runs
# cargo) or target/.
BINARY = Path(
    os.environ.get("FAULTS_TICKETS_BIN")
    or REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "tickets"
)
# Fixed, so that a token from one replica is valid on another; test-only values.
JWT_SECRET = "tickets-faults-jwt-secret-not-for-production-0123456789"

# Every process started, so that the driver can stop leftovers whatever happens.
_started: list[Service] = []


def _base_environment() -> dict[str, str]:
    """The driver's environment without any setting of the service (`just` exports the
    developer's .env), so that only what a scenario sets applies."""
    dropped = ("DATABASE_URL", "RUST_LOG", "RUST_LOG_FORMAT")
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TICKETS") and key not in dropped
    }


class Service:
    """One `tickets serve` process. `settings` are `TICKETS__…` overrides."""

    def __init__(self, run_dir: Path, name: str, database_url: str, **settings: str):
        self.name = name
        self.port = free_port()
        self.log_path = run_dir / f"{name}.log"
        self.run_dir = run_dir
        self.env = _base_environment()
        self.env.update(
            DATABASE_URL=database_url,
            RUST_LOG="info",
            RUST_LOG_FORMAT="json",
            TICKETS__SERVER__HOST=HOST,
            TICKETS__SERVER__PORT=str(self.port),
            TICKETS__AUTH__JWT_SECRET=JWT_SECRET,
            TICKETS__AUTH__STAFF_API_KEY=STAFF_KEY,
            TICKETS__AUTH__BCRYPT_COST="4",
        )
        self.env.update({f"TICKETS__{key.upper()}": str(value) for key, value in settings.items()})
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> Service:
        if not BINARY.is_file():
            raise RuntimeError(f"{BINARY} is missing: run `cargo build --release -p http-adapter`")
        with open(self.log_path, "ab") as log:
            # The run directory as working directory: no .env or config/ of the
            # repository applies, only the compiled-in defaults and our environment.
            self.process = subprocess.Popen(
                [str(BINARY), "serve"],
                cwd=self.run_dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started_at = time.monotonic()
        _started.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        """Polls `/health/ready` until 200; false on timeout or when the process exits."""
        deadline = time.monotonic() + timeout
        probe = Client(self.port, timeout=2)
        try:
            while time.monotonic() < deadline and self.alive():
                if probe.call("GET", "/health/ready").status == 200:
                    return True
                time.sleep(0.1)
            return False
        finally:
            probe.close()

    def send(self, sig: signal.Signals) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if the process still runs after `timeout` seconds."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGINT (a stop without SIGTERM's drain: no load balancer to serve), then
        SIGKILL if it lingers; nothing if it already exited."""
        if not self.alive():
            return
        self.send(signal.SIGINT)
        if self.wait_exit(15) is None:
            self.send(signal.SIGKILL)
            self.wait_exit(5)

    def log_records(self) -> list[dict]:
        """The log's JSON lines; other lines (the exit message) as {"raw": line}."""
        records = []
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            for line in log:
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    records.append({"raw": line})
        return records

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def create_superuser(run_dir: Path, database_url: str, email: str, username: str) -> None:
    """`tickets create-superuser`, as an operator makes the first superuser: the password
    (PASSWORD) on standard input. Applies pending migrations first, like `serve`."""
    env = _base_environment()
    env.update(DATABASE_URL=database_url, RUST_LOG="warn", TICKETS__AUTH__BCRYPT_COST="4")
    done = subprocess.run(
        [str(BINARY), "create-superuser", "--email", email, "--username", username],
        input=PASSWORD + "\n",
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SetupError(f"tickets create-superuser failed ({done.returncode}): {done.stderr.strip()}")


def stop_all() -> None:
    """Stops every process this driver started and that still runs."""
    for service in _started:
        service.stop()
