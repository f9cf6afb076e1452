"""Drop-in activation: unchanged upstream scripts and `fast-agent go` use the database when
one is configured (see fast_agent_db_hook)."""

from __future__ import annotations

import os
from types import ModuleType

# Not mcp_agent.db.urls: it imports SQLAlchemy, which a process with no database never needs.
from mcp_agent.db.environment_variables import DATABASE_URL_ENV


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
    except (OSError, yaml.YAMLError, RecursionError, ValueError):
        return None  # upstream reports a broken file itself
    database = loaded.get("database") if isinstance(loaded, dict) else None
    url = database.get("url") if isinstance(database, dict) else None
    return url.strip() if isinstance(url, str) and url.strip() else None


def activate(module: ModuleType) -> None:
    """Swap `module.FastAgent` for the database-backed class when a database is configured."""
    database_url = configured_database_url()
    if database_url is None:
        return
    from mcp_agent.db.patches.drop_in import use_database_fast_agent

    use_database_fast_agent(module, database_url)
