"""The README's first command: `fast-agent-db tour` does the main job on a fresh directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.sqlite]


def test_the_tour_does_the_main_job(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "FAST_AGENT_DATABASE_URL"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "fast-agent-db"), "tour"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert (tmp_path / "fastagent.db").exists(), "the embedded default database"
    assert "Schema revision: 0003 (head 0003, current)" in output
    assert "report: reply to: 42\ntool said: 42 (user message 1)" in output.replace("\n\n", "\n")
    assert "(user message 2)" in output, "the second process resumed the session"
    assert "researcher (4 messages)" in output and "writer (4 messages)" in output
    assert output.count("report generate") == 2 and "├── researcher generate" in output
    assert "$0.000" in output, "cost from the price table"
    assert "Requesting tool call" in output or "Streaming complete" in output
