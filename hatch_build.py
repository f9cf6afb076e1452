"""Hatch build hook: make `import mcp_agent.db` work from an editable install.

`mcp_agent` is a regular package owned by the fast-agent-mcp wheel. An editable install only
appends `src/` to `sys.path`, and Python never looks there for `mcp_agent.db` because the
installed `mcp_agent.__path__` does not include `src/mcp_agent`. For editable builds this hook
adds one generated file, `mcp_agent/db/__init__.py`, that points the package's `__path__` at
the checkout and runs the checkout's `__init__.py`, so edits in `src/` take effect at once.
Regular wheels are untouched: they carry the real `mcp_agent/db` files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_SHIM = '''"""Editable install of fast-agent-db: forwards `mcp_agent.db` to the source checkout."""
from pathlib import Path as _Path

_SOURCE = _Path({source!r})
__path__ = [str(_SOURCE)]
__file__ = str(_SOURCE / "__init__.py")
exec(compile(_SOURCE.joinpath("__init__.py").read_text(encoding="utf-8"), __file__, "exec"))
'''


class EditableOverlayHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version != "editable":
            return
        source = Path(self.root, "src", "mcp_agent", "db").resolve()
        shim_dir = Path(tempfile.mkdtemp(prefix="fast-agent-db-editable-"))
        shim = shim_dir / "__init__.py"
        shim.write_text(_SHIM.format(source=str(source)), encoding="utf-8")
        # Replaces the regular force-include map for this build, so the migrations are read
        # from the checkout rather than copied into site-packages.
        build_data["force_include_editable"][str(shim)] = "mcp_agent/db/__init__.py"
        # The drop-in activation hook; its module is found on the editable `src/` path.
        pth = Path(self.root, "src", "fast_agent_db.pth")
        build_data["force_include_editable"][str(pth)] = "fast_agent_db.pth"
