"""Subprocesses in tests: waited on to their exit under one generous guard, never a speed limit.

A loaded 2-core machine (CI beside other work) can make a child take many times its usual
time; a fixed limit of a minute or two then fails a test that is not broken. The guard only
stops a hang. When it fires, or when a test finds the child failed, the child's output is in
the failure message: without it a subprocess failure says nothing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest

#: Seconds a child may run before it is taken for hung (FAST_AGENT_TEST_GUARD_S changes it).
GUARD_S = float(os.environ.get("FAST_AGENT_TEST_GUARD_S", "1800"))


def describe(process: subprocess.CompletedProcess[Any] | subprocess.TimeoutExpired) -> str:
    """The command, its exit code (when it exited) and everything it wrote."""
    command = process.args if isinstance(process.args, str) else " ".join(map(str, process.args))
    stdout, stderr = process.stdout, process.stderr
    if isinstance(stdout, bytes):
        stdout = stdout.decode(errors="replace")
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    code = getattr(process, "returncode", None)
    return (
        f"command: {command}\nexit code: {code}\n"
        f"--- stdout ---\n{stdout or ''}\n--- stderr ---\n{stderr or ''}"
    )


def run_guarded(
    args: Sequence[Any] | str, *, expect_code: int | None = None, **options: Any
) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run(args, capture_output=True, **options)` waited on under GUARD_S.

    With `expect_code`, a different exit code fails the test showing the child's output.
    """
    options.setdefault("capture_output", True)
    options.pop("timeout", None)
    try:
        done = subprocess.run(args, timeout=GUARD_S, **options)  # noqa: PLW1510 - checked below
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"still running after the {GUARD_S:.0f} s guard (hung?)\n{describe(hung)}")
    if expect_code is not None and done.returncode != expect_code:
        pytest.fail(f"expected exit code {expect_code}\n{describe(done)}")
    return done


def wait_guarded(process: subprocess.Popen[Any]) -> int:
    """`process.wait()` under GUARD_S; a hang kills it and fails the test with its output."""
    try:
        return process.wait(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        hung = subprocess.TimeoutExpired(process.args, GUARD_S, output=stdout, stderr=stderr)
        pytest.fail(f"still running after the {GUARD_S:.0f} s guard (hung?)\n{describe(hung)}")
