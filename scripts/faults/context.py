"""What every scenario gets from the driver: the run directory for logs, and names of
scenario databases unique to this run."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Context:
    run_dir: Path

    def database(self, label: str) -> str:
        """`tickets_faults_<label>_<pid>`: the tests' sweeps leave it alone, and two runs
        at once do not collide."""
        # PostgreSQL keeps 63 bytes of a name; the pid at the end must survive.
        return f"tickets_faults_{re.sub(r'[^a-z0-9]+', '_', label.lower())[:36]}_{os.getpid()}"
