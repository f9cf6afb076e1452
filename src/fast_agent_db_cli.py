"""The `fast-agent-db` console script: admin commands without upstream's start-up cost.

`mcp_agent/__init__.py` (upstream's) imports the whole agent stack - every provider SDK,
the MCP client, the workflows - which costs seconds of CPU. Commands that only read or
change the database (`sessions list`, `logs`, `db status`, ...) need none of it, but every
`mcp_agent.db` module lives inside that package. So for those commands this entry point,
which lives outside the package, registers `mcp_agent` as a package whose `__init__` runs
on first use of one of its own names (`from mcp_agent import FastAgent`) instead of at
once: submodules (`mcp_agent.db.*`, `mcp_agent.mcp.*`) import as usual. Commands that run
agents (go, run, chat, tour, check, setup) and anything unrecognised import upstream as
usual, first, so upstream always initialises in its own order when its agents run.

No upstream file is changed: this only decides when upstream's `__init__` runs.
"""

from __future__ import annotations

import importlib.util
import sys
import types

#: Commands that never run an agent: upstream's `__init__` is deferred for them.
ADMIN_COMMANDS = frozenset(
    {
        "sessions",
        "executions",
        "usage",
        "logs",
        "prune",
        "db",
        "config",
        "servers",
        "models",
        "tokens",
    }
)
#: `agents` subcommands that never run a script (`agents import x.py` runs one).
ADMIN_AGENT_COMMANDS = frozenset({"list", "show", "history", "rollback", "delete", "export"})
#: Root options that take a value (so the value is not taken for the command).
_ROOT_OPTIONS_WITH_VALUE = frozenset({"--database-url", "--session"})


class _DeferredPackage(types.ModuleType):
    """`mcp_agent` whose `__init__` runs when one of the names it defines is first asked for."""

    def __getattr__(self, name: str) -> object:
        # Only called for names the module does not have yet; dunders stay missing.
        if name.startswith("__") or self.__dict__.get("_fast_agent_db_initialised"):
            raise AttributeError(f"module 'mcp_agent' has no attribute {name!r}")
        initialise_upstream(self)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'mcp_agent' has no attribute {name!r}") from None


def initialise_upstream(package: types.ModuleType | None = None) -> None:
    """Run upstream's `mcp_agent/__init__.py` in the deferred package (once)."""
    package = package or sys.modules.get("mcp_agent")
    if not isinstance(package, _DeferredPackage):
        return
    if package.__dict__.get("_fast_agent_db_initialised"):
        return
    package.__dict__["_fast_agent_db_initialised"] = True
    spec = package.__spec__
    assert spec is not None and spec.loader is not None
    code = spec.loader.get_code("mcp_agent")  # type: ignore[attr-defined]
    exec(code, package.__dict__)


def defer_upstream_init() -> bool:
    """Register `mcp_agent` as a deferred package; False when it is imported already or
    cannot be found (then nothing changes)."""
    if "mcp_agent" in sys.modules:
        return False
    spec = importlib.util.find_spec("mcp_agent")
    if spec is None or spec.loader is None or not hasattr(spec.loader, "get_code"):
        return False
    package = _DeferredPackage("mcp_agent")
    package.__spec__ = spec
    package.__loader__ = spec.loader
    package.__file__ = spec.origin
    package.__path__ = list(spec.submodule_search_locations or [])
    package.__package__ = "mcp_agent"
    sys.modules["mcp_agent"] = package
    return True


def command_words(arguments: list[str]) -> list[str]:
    """The command and subcommand named on the command line (root options skipped)."""
    words: list[str] = []
    index = 0
    while index < len(arguments) and len(words) < 2:
        argument = arguments[index]
        if argument in _ROOT_OPTIONS_WITH_VALUE and not words:
            index += 2
            continue
        if not argument.startswith("-"):
            words.append(argument)
        elif words:
            break  # the command's own options: its subcommand comes before them
        index += 1
    return words


def is_admin_command(arguments: list[str]) -> bool:
    words = command_words(arguments)
    if not words:
        return False
    if words[0] == "agents":
        return len(words) > 1 and words[1] in ADMIN_AGENT_COMMANDS
    return words[0] in ADMIN_COMMANDS


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fast-agent-db")
    except PackageNotFoundError:
        return "unknown"


def main() -> None:
    arguments = sys.argv[1:]
    if arguments == ["--version"]:
        # Nothing to import: the installed distribution knows its version.
        print(f"fast-agent-db {_version()}")
        return
    if is_admin_command(arguments):
        defer_upstream_init()
    from mcp_agent.db.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
