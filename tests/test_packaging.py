"""The overlay installs beside upstream: from the wheel and from the editable checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import mcp_agent
import mcp_agent.db
from mcp_agent.db.migration_runner import head_revision
from tests.support.processes import run_guarded

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def _uv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = run_guarded(
        [str(BIN / "uv"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"uv {' '.join(args)} failed:\n{result.stderr}"
    return result


def test_editable_checkout_serves_mcp_agent_db_from_src() -> None:
    # The suite itself runs from uv's default editable install.
    assert (
        Path(mcp_agent.db.__file__).resolve() == ROOT / "src" / "mcp_agent" / "db" / "__init__.py"
    )
    # ...while upstream's mcp_agent still comes from the pinned fast-agent-mcp wheel.
    assert "site-packages" in Path(mcp_agent.__file__).parts


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _uv("build", "--wheel", "--out-dir", str(out))
    (built,) = out.glob("fast_agent_db-*.whl")
    return built


def test_wheel_holds_only_the_overlay_and_its_migrations(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    package_files = [name for name in names if not name.startswith("fast_agent_db-")]
    assert package_files, names
    # Besides the overlay: the drop-in activation (a .pth line and the module it loads) and
    # the console script's entry module.
    activation = {"fast_agent_db.pth", "fast_agent_db_hook.py", "fast_agent_db_cli.py"}
    assert activation <= set(package_files)
    others = [name for name in package_files if name not in activation]
    assert all(name.startswith("mcp_agent/db/") for name in others), others
    assert "mcp_agent/__init__.py" not in names
    assert "mcp_agent/db/migrations/env.py" in names
    assert any(name.startswith("mcp_agent/db/migrations/versions/0001") for name in names)
    assert any(name.startswith("mcp_agent/db/migrations/versions/0002") for name in names)


def test_installed_wheel_imports_and_upgrades_without_a_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _uv("venv", "--quiet", "--python", sys.executable, str(venv))
    requirements = tmp_path / "requirements.txt"
    exported = _uv("export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes")
    requirements.write_text(exported.stdout)
    python = venv / "bin" / "python"
    _uv("pip", "install", "--quiet", "--python", str(python), "-r", str(requirements), str(wheel))

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    probe = run_guarded(
        [
            str(python),
            "-c",
            "import mcp_agent.db, mcp_agent.core.fastagent; print(mcp_agent.db.__file__)",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert str(venv) in probe.stdout
    finder = run_guarded(
        [str(python), "-c", "import sys; print(type(sys.meta_path[0]).__name__)"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert finder.stdout.strip() == "_FastAgentDbFinder", "the drop-in .pth is active"

    upgrade = run_guarded(
        [str(venv / "bin" / "fast-agent-db"), "db", "upgrade", "--database-url", "sqlite:///w.db"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"from empty to {head_revision()}" in upgrade.stdout
    assert (workdir / "w.db").exists()
