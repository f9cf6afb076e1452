"""Options every database command takes."""

from __future__ import annotations

from typing import Annotated

import typer

from mcp_agent.db.urls import DATABASE_URL_ENV

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=DATABASE_URL_ENV,
        show_envvar=True,
        help="Database URL: postgresql://user:pass@host/db or sqlite:///file.db. "
        "Default: ./fastagent.db (SQLite).",
        show_default=False,
    ),
]
