"""`fast-agent-db worker` processes for tests: started in a session of their own, their output
in files, shown when a test fails."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import wait_guarded

REPO = Path(__file__).resolve().parents[2]


class Worker:
    """A `fast-agent-db worker` process, its output in files (a pipe could fill and block
    it), shown when a test fails."""

    def __init__(self, database_url: str, tmp_path: Path, *options: str) -> None:
        name = f"worker-{time.monotonic_ns()}"
        self.stdout_path = tmp_path / f"{name}.out"
        self.stderr_path = tmp_path / f"{name}.err"
        self.args = [
            sys.executable, "-m", "mcp_agent.db.cli", "worker",
            "--database-url", database_url, *options,
        ]  # fmt: skip
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                self.args, cwd=REPO, stdout=out, stderr=err, text=True, start_new_session=True
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def describe(self) -> str:
        return (
            f"command: {' '.join(self.args)}\nexit code: {self.process.poll()}\n"
            f"--- stdout ---\n{self.stdout_path.read_text()}\n--- stderr ---\n{self.stderr}"
        )

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self) -> int:
        return wait_guarded(self.process)

    def stop(self) -> None:
        """Stop it (a test's end): SIGTERM twice, so runs in progress are handed back."""
        if self.process.poll() is None:
            self.signal()
            self.signal()
            self.wait()
