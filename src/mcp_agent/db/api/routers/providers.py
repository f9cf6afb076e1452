"""/v1/providers: the provider sections of the settings (anthropic, openai, generic, azure,
...), through the settings store. The API key is only ever a reference (`env:NAME`) or
`<encrypted>`; the plaintext key never enters or leaves the database."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from mcp_agent.db.api.auth import Caller
from mcp_agent.db.api.dependencies import SettingsStore
from mcp_agent.db.api.masked_secrets import keep_encrypted_values
from mcp_agent.db.api.pagination import Page, PageParameters, paginate
from mcp_agent.db.api.problems import problem_responses
from mcp_agent.db.api.routers.settings import EncryptSecrets, SettingsWrite, settings_write
from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.settings import edits
from mcp_agent.db.settings.document import PROVIDER_SECTIONS, ConfigDocument, document_to_display

router = APIRouter(prefix="/providers", tags=["providers"])

ProviderName = Annotated[
    str,
    Path(max_length=64, description=f"One of: {', '.join(sorted(PROVIDER_SECTIONS))}."),
]


class Provider(BaseModel):
    """A configured provider section, secrets as references or masked."""

    name: str
    base_url: str | None = None
    #: `env:NAME`, `tpl:...` or `<encrypted>`; never the key itself.
    api_key: str | None = None
    #: The section's other fields (cache_mode, reasoning_effort, resource_name, ...).
    options: dict[str, Any] = Field(default_factory=dict)


class ProviderSection(BaseModel):
    """A provider section to store (it replaces the whole section)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    #: A reference (`env:OPENAI_API_KEY` or `${OPENAI_API_KEY}`); a literal key only with
    #: encrypt_secrets.
    api_key: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


def _providers(document: ConfigDocument) -> list[Provider]:
    displayed = document_to_display(document)
    providers = []
    for name in sorted(document.providers):
        section = dict(displayed.get(name) or {})
        providers.append(
            Provider(
                name=name,
                base_url=section.pop("base_url", None),
                api_key=section.pop("api_key", None),
                options=section,
            )
        )
    return providers


async def _provider(store: SettingsStore, name: str) -> Provider:
    for provider in _providers(await store.load_document()):
        if provider.name == name:
            return provider
    known = ", ".join(sorted(PROVIDER_SECTIONS))
    if name in PROVIDER_SECTIONS:
        raise UnknownValueError(f"provider {name!r} is not configured")
    raise UnknownValueError(f"no provider {name!r} (known: {known})")


@router.get("", summary="Configured providers", response_model=Page[Provider])
async def list_providers(store: SettingsStore, page: PageParameters) -> Page[Provider]:
    providers = _providers(await store.load_document())
    return paginate(providers, page, list_name="providers", key=lambda p: (p.name,))


@router.get(
    "/{name}",
    summary="One provider section",
    response_model=Provider,
    responses=problem_responses(404),
)
async def get_provider(store: SettingsStore, name: ProviderName) -> Provider:
    return await _provider(store, name)


@router.put(
    "/{name}",
    summary="Create or replace a provider section",
    response_model=Provider,
    responses={201: {"model": Provider, "description": "Created"}},
)
async def put_provider(
    store: SettingsStore,
    caller: Caller,
    name: ProviderName,
    section: ProviderSection,
    response: Response,
    encrypt_secrets: EncryptSecrets = False,
) -> Provider:
    if name not in PROVIDER_SECTIONS:
        known = ", ".join(sorted(PROVIDER_SECTIONS))
        raise InputError("name", f"unknown provider {name!r} (known: {known})")
    fields: dict[str, Any] = dict(section.options)
    if section.base_url is not None:
        fields["base_url"] = section.base_url
    if section.api_key is not None:
        fields["api_key"] = section.api_key

    def store_section(document: ConfigDocument) -> ConfigDocument:
        shaped = keep_encrypted_values({name: fields}, document)
        return edits.set_provider(document, name, shaped[name], encrypt_literals=encrypt_secrets)

    existed = name in (await store.load_document()).providers
    await store.update(store_section, changed_by=caller.audit_name)
    if not existed:
        response.status_code = status.HTTP_201_CREATED
    return await _provider(store, name)


@router.delete(
    "/{name}",
    summary="Remove a provider section (its models and prices stay)",
    response_model=SettingsWrite,
    responses=problem_responses(404),
)
async def delete_provider(
    store: SettingsStore, caller: Caller, name: ProviderName
) -> SettingsWrite:
    await _provider(store, name)
    changes = await store.update(
        lambda document: edits.unset_value(document, name), changed_by=caller.audit_name
    )
    return settings_write(changes)
