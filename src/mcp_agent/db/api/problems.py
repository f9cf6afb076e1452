"""Errors as `application/problem+json` (RFC 9457), each naming the field it is about.

Every error a route can meet becomes one `Problem`: FastAPI's validation of a request (the
field from its location, union tags left out), our `FastAgentDbError` family (the field from
the error, or from the problems of a ConfigError/DefinitionError, which start with it), HTTP
errors (unknown route, 405, 409 raised by a route), and anything unexpected, which becomes a 500
saying nothing of the server's internals (the traceback goes to the server's log only).

Database failures are reported without the database's URL or driver text: a client learns the
database is unavailable, not where it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mcp_agent.db.engine import describe_database_error
from mcp_agent.db.errors import (
    CallNotStartedError,
    ConfigError,
    DatabaseRefusedError,
    DatabaseUnavailableError,
    DatabaseUrlError,
    DefinitionError,
    FastAgentDbError,
    InputError,
    SchemaOutOfDateError,
    SessionError,
    UnknownValueError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Problem types: tag URIs (RFC 4151) name them without pointing at a site that must exist.
_TYPE_PREFIX = "tag:fast-agent-db,2026:problem/"

logger = logging.getLogger("mcp_agent.db.api")


class FieldProblem(BaseModel):
    """What is wrong with one field of the request."""

    #: The field as the client named it: `limit`, `sequence[0]`, `logger.level`,
    #: `mcp.servers.fetch.env.TOKEN`; null when the problem is about the request as a whole.
    field: str | None = None
    #: Where the field was: body, query, path, header (null: inside a stored document).
    location: str | None = None
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details, with `errors` listing each field that is wrong."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


def problem_type(name: str) -> str:
    return _TYPE_PREFIX + name


def problem_json(
    status: int,
    *,
    instance: str,
    kind: str | None = None,
    detail: str | None = None,
    errors: Sequence[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem response: `kind` names its type (None: about:blank, the status says it all)."""
    problem = Problem(
        type=problem_type(kind) if kind else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        errors=list(errors),
    )
    return JSONResponse(
        problem.model_dump(mode="json"),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def problem_response(
    request: Request,
    status: int,
    *,
    kind: str | None = None,
    detail: str | None = None,
    errors: Sequence[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return problem_json(
        status,
        instance=request.url.path,
        kind=kind,
        detail=detail,
        errors=errors,
        headers=headers,
    )


#: OpenAPI `responses` entry for a status answered with a Problem.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {}},
            "description": HTTPStatus(status).phrase,
        }
        for status in statuses
    }


# ---------------------------------------------------------------------------------------------
# Field names


def _without_union_tags(location: Sequence[Any], body: Any) -> list[Any]:
    """`location` without the tags pydantic inserts for a discriminated union: a part that is
    not a key of the object it indexes but equals that object's `type` is such a tag."""
    parts: list[Any] = []
    node = body
    for part in location:
        if isinstance(node, Mapping) and part not in node and node.get("type") == part:
            continue
        parts.append(part)
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return parts


def dotted_field(parts: Sequence[Any]) -> str | None:
    """`("sequence", 0, "name")` as `sequence[0].name`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or None


def validation_problems(error: RequestValidationError) -> list[FieldProblem]:
    problems = []
    for detail in error.errors():
        location = list(detail.get("loc") or ())
        where = str(location[0]) if location else None
        rest = location[1:]
        if where == "body":
            rest = _without_union_tags(rest, error.body)
            if detail.get("type") == "json_invalid":
                rest = []
        problems.append(
            FieldProblem(field=dotted_field(rest), location=where, detail=str(detail["msg"]))
        )
    return problems


def problem_from_text(text: str) -> FieldProblem:
    """A problem of a ConfigError or DefinitionError: `[origin: ]field: what is wrong`.

    The field is the last part before the message that has no spaces (`setting: logger.level:
    Input should be...`, `review.sequence[0]: unknown agent 'x'`); a problem about no field in
    particular (`dependency cycle: a -> b -> a`) gets none.
    """
    parts = text.split(": ")
    leading = 0
    while leading < len(parts) - 1 and parts[leading] and " " not in parts[leading]:
        leading += 1
    if leading == 0:
        return FieldProblem(detail=text)
    return FieldProblem(field=parts[leading - 1], detail=": ".join(parts[leading:]))


# ---------------------------------------------------------------------------------------------
# Handlers


def _nothing_changed(request: Request) -> str:
    """Said of a refused write, so a client knows it need not look what is left behind."""
    return "" if request.method in ("GET", "HEAD", "OPTIONS") else " Nothing was changed."


async def _validation_failed(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = validation_problems(error)
    named = ", ".join(p.field for p in problems if p.field) or "the request"
    return problem_response(
        request,
        422,
        kind="invalid-input",
        detail=f"Invalid input: {named}.{_nothing_changed(request)}",
        errors=problems,
    )


def _our_error_response(request: Request, error: FastAgentDbError) -> JSONResponse:
    if isinstance(error, UnknownValueError):
        return problem_response(request, 404, kind="not-found", detail=str(error))
    if isinstance(error, InputError):
        return problem_response(
            request,
            422,
            kind="invalid-input",
            detail=f"{error}.{_nothing_changed(request)}",
            errors=[FieldProblem(field=error.field, detail=error.reason)],
        )
    if isinstance(error, ConfigError | DefinitionError):
        return problem_response(
            request,
            422,
            kind="invalid-input",
            detail="; ".join(error.problems) + "." + _nothing_changed(request),
            errors=[problem_from_text(text) for text in error.problems],
        )
    if isinstance(error, SessionError | CallNotStartedError):
        return problem_response(request, 409, kind="conflict", detail=str(error))
    if isinstance(error, DatabaseUnavailableError | SchemaOutOfDateError | DatabaseUrlError):
        logger.error("database unavailable: %s", error)
        return problem_response(
            request,
            503,
            kind="database-unavailable",
            detail="The database is unavailable or its schema is not current; the server log "
            "says why. Nothing was changed.",
            headers={"Retry-After": "5"},
        )
    if isinstance(error, DatabaseRefusedError):
        logger.error("database refused a request: %s", error)
        return problem_response(
            request,
            409,
            kind="refused",
            detail="The database refused the change; nothing was changed.",
        )
    return _internal_error(request, error)


async def _fast_agent_db_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, FastAgentDbError)
    return _our_error_response(request, error)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    runtime = getattr(request.app.state, "runtime", None)
    url = runtime.raw_url if runtime is not None else None
    return _our_error_response(request, describe_database_error(error, url))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    kind = {401: "unauthorized", 404: "not-found", 409: "conflict", 413: "too-large"}.get(
        error.status_code
    )
    detail = error.detail if isinstance(error.detail, str) else None
    return problem_response(
        request, error.status_code, kind=kind, detail=detail, headers=error.headers
    )


def _internal_error(request: Request, error: BaseException) -> JSONResponse:
    logger.error(
        "unexpected error answering %s %s", request.method, request.url.path, exc_info=error
    )
    return problem_response(
        request,
        500,
        kind="internal",
        detail="An unexpected error occurred; the server's log has the details.",
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    return _internal_error(request, error)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(FastAgentDbError, _fast_agent_db_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
