"""Drop-in activation: unchanged upstream scripts and `fast-agent go` use the database when
one is configured (see fast_agent_db_hook)."""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

from mcp_agent.db.urls import DATABASE_URL_ENV

SESSION_ENV = "FAST_AGENT_SESSION"


def configured_database_url() -> str | None:
    """FAST_AGENT_DATABASE_URL, else `database.url` of the fastagent.config.yaml upstream
    would load (found the way upstream finds it, walking up from the working directory)."""
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if from_env:
        return from_env
    from mcp_agent.config import Settings

    config_file = Settings.find_config()
    if config_file is None:
        return None
    import yaml

    try:
        loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None  # upstream reports a broken file itself
    database = loaded.get("database") if isinstance(loaded, dict) else None
    url = database.get("url") if isinstance(database, dict) else None
    return url.strip() if isinstance(url, str) and url.strip() else None


def _option_from_argv(flag: str) -> str | None:
    """`--flag VALUE` or `--flag=VALUE` from sys.argv (upstream ignores unknown flags)."""
    for index, argument in enumerate(sys.argv):
        if argument == flag and index + 1 < len(sys.argv):
            return sys.argv[index + 1]
        if argument.startswith(flag + "="):
            return argument.split("=", 1)[1]
    return None


def activate(module: ModuleType) -> None:
    """Swap `module.FastAgent` for the database-backed class when a database is configured."""
    database_url = configured_database_url()
    if database_url is None:
        return
    from mcp_agent.db.fastagent import FastAgent as DatabaseFastAgent

    class FastAgent(DatabaseFastAgent):
        """Upstream's FastAgent, backed by the configured database (fast-agent-db drop-in)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("database_url", database_url)
            kwargs.setdefault(
                "session_id", _option_from_argv("--session") or os.environ.get(SESSION_ENV)
            )
            super().__init__(*args, **kwargs)

    FastAgent.__module__ = module.__name__
    module.FastAgent = FastAgent  # type: ignore[attr-defined]
