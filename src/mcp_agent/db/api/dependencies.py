"""What routes take from the app: the one DatabaseRuntime the lifespan opened, and the stores
over it (the same stores the CLI uses, so the API validates and records the same way).

Dependencies are `async def` even when they await nothing: FastAPI runs a plain `def`
dependency in a worker thread, and the hops to and from it took most of a small request's
time (measured: a GET of a session 8.6 ms, most of it waiting for threads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mcp_agent.db.definitions.sql import SqlDefinitionStore
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.settings.model_catalog import SqlModelCatalog
from mcp_agent.db.settings.sql import SqlSettingsStore
from mcp_agent.db.tokens.sql import SqlTokenStore


async def database_runtime(request: Request) -> DatabaseRuntime:
    runtime: DatabaseRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[DatabaseRuntime, Depends(database_runtime)]


async def settings_store(runtime: Runtime) -> SqlSettingsStore:
    return SqlSettingsStore(runtime)


async def definition_store(runtime: Runtime) -> SqlDefinitionStore:
    return SqlDefinitionStore(runtime)


async def model_catalog(runtime: Runtime) -> SqlModelCatalog:
    return SqlModelCatalog(runtime)


async def token_store(runtime: Runtime) -> SqlTokenStore:
    return SqlTokenStore(runtime)


SettingsStore = Annotated[SqlSettingsStore, Depends(settings_store)]
DefinitionStore = Annotated[SqlDefinitionStore, Depends(definition_store)]
ModelCatalog = Annotated[SqlModelCatalog, Depends(model_catalog)]
TokenStore = Annotated[SqlTokenStore, Depends(token_store)]
