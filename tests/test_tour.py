"""The README's first command: `fast-agent-db tour` does the main job on a fresh directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_agent.db.schema_head import SCHEMA_HEAD
from tests.support.processes import run_guarded

pytestmark = [pytest.mark.slow, pytest.mark.sqlite]


FAST_AGENT_DB = str(Path(sys.executable).parent / "fast-agent-db")


def test_the_tour_does_the_main_job(tmp_path: Path) -> None:
    # The user's database, named by the environment, is not the tour's to change.
    users_database = tmp_path / "users.db"
    environment = {**os.environ, "FAST_AGENT_DATABASE_URL": f"sqlite:///{users_database}"}
    result = run_guarded(
        [FAST_AGENT_DB, "tour"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    output = result.stdout
    flat = " ".join(output.split())
    assert (tmp_path / "fastagent-tour.db").exists(), "the tour's own embedded database"
    assert not users_database.exists()
    assert f"Schema revision: {SCHEMA_HEAD} (head {SCHEMA_HEAD}, current)" in output
    assert "report: reply to: 42\ntool said: 42 (user message 1)" in output.replace("\n\n", "\n")
    assert "(user message 2)" in output, "the second process resumed the session"
    assert "'user message 2' shows the models were sent the first turn too" in flat
    assert "researcher (4 messages)" in output and "writer (4 messages)" in output
    assert 'calls calculator-add {"a": 19, "b": 23}' in output, "the tool call, in the transcript"
    assert "calculator-add returned: 42" in output
    assert output.count("report generate") == 2 and "├── researcher generate" in output
    assert "$0.000" in output, "cost from the price table"
    events = output.split("6. the session's events", 1)[1].splitlines()[1:]
    assert events and "fast-agent-db run" not in events[0]
    assert "Requesting tool call" in output or "Streaming complete" in output
    assert "shutdown" not in events[0].lower() and "cleanup" not in events[0].lower()


def test_the_tour_asks_before_changing_a_database_given_explicitly(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'mine.db'}"
    for args in (
        ["db", "upgrade"],
        ["config", "set", "default_model", "sonnet"],
    ):
        setup = run_guarded(
            [FAST_AGENT_DB, *args, "--database-url", database_url],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert setup.returncode == 0, setup.stdout + setup.stderr
    result = run_guarded(
        [FAST_AGENT_DB, "tour", "--database-url", database_url],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, output
    assert "setting default_model" in output and "--yes" in output
    shown = run_guarded(
        [FAST_AGENT_DB, "config", "show", "--database-url", database_url],
        capture_output=True,
        text=True,
    )
    assert "sonnet" in shown.stdout and "fake-model" not in shown.stdout
