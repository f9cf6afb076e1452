"""What routes take from the app: the one DatabaseRuntime the lifespan opened, and the stores
over it (the same stores the CLI uses, so the API validates and records the same way)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.model_catalog import SqlModelCatalog
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.tokens.sql import SqlTokenStore


def database_runtime(request: Request) -> DatabaseRuntime:
    runtime: DatabaseRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[DatabaseRuntime, Depends(database_runtime)]


def settings_store(runtime: Runtime) -> SqlSettingsStore:
    return SqlSettingsStore(runtime)


def definition_store(runtime: Runtime) -> SqlDefinitionStore:
    return SqlDefinitionStore(runtime)


def model_catalog(runtime: Runtime) -> SqlModelCatalog:
    return SqlModelCatalog(runtime)


def token_store(runtime: Runtime) -> SqlTokenStore:
    return SqlTokenStore(runtime)


SettingsStore = Annotated[SqlSettingsStore, Depends(settings_store)]
DefinitionStore = Annotated[SqlDefinitionStore, Depends(definition_store)]
ModelCatalog = Annotated[SqlModelCatalog, Depends(model_catalog)]
TokenStore = Annotated[SqlTokenStore, Depends(token_store)]
