"""What a webhook may hold: an http(s) URL without credentials, a secret reference
(`env:NAME`, never the secret itself), known event names. Every message names the field."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

from mcp_agent.db.errors import InputError
from mcp_agent.db.limits import check_text
from mcp_agent.db.models.runs import DELIVERY_STATUSES, WebhookRow
from mcp_agent.db.models.types import utc_now
from mcp_agent.db.settings.secrets import (
    ENV_PREFIX,
    SecretError,
    check_variable_allowed,
    url_has_credentials,
)
from mcp_agent.db.webhooks.base import DeliveryStatus, Webhook

#: The ends of a run a webhook can be told of, as sent in X-Fast-Agent-Event.
WEBHOOK_EVENTS: tuple[str, ...] = ("run.completed", "run.failed", "run.cancelled")
#: A per-run webhook given without a secret reference signs with this variable's value.
DEFAULT_SECRET_ENV = "FAST_AGENT_DB_WEBHOOK_SECRET"
DEFAULT_SECRET_REF = f"{ENV_PREFIX}{DEFAULT_SECRET_ENV}"

_URL_MAX = WebhookRow.__table__.c.url.type.length
_SECRET_REF_MAX = WebhookRow.__table__.c.secret_ref.type.length
_AGENT_MAX = WebhookRow.__table__.c.agent_name.type.length
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def checked_url(url: str, *, field: str = "url") -> str:
    """`url` if it is an absolute http(s) URL with a host and no credentials.

    Raises:
        InputError: another scheme, no host, user-info or a credential query parameter
            (the URL is stored and shown: a credential in it would leak), too long, NUL.
    """
    url = check_text(url.strip(), field=field, max_length=_URL_MAX)
    if any(character.isspace() for character in url):
        raise InputError(field, "a URL cannot contain whitespace")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        raise InputError(field, f"not a valid URL ({error})") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise InputError(
            field, f"must be an http:// or https:// URL (got {shown}), e.g. https://host/hook"
        )
    if not parts.hostname:
        raise InputError(field, "has no host, e.g. https://host/hook")
    if parts.username is not None or parts.password is not None or url_has_credentials(url):
        raise InputError(
            field,
            "must not carry credentials (user-info or a token in the query): URLs are stored "
            "and shown; the receiver authenticates deliveries by their X-Fast-Agent-Signature",
        )
    return url


def checked_secret_ref(secret_ref: str | None, *, field: str = "secret_ref") -> str:
    """The stored form of a signing secret's reference: `env:NAME` (`${NAME}` is accepted
    and stored as `env:NAME`); None gives the default.

    Raises:
        InputError: anything else, in particular a literal secret (the message says to put it
            in an environment variable; it never repeats the value), or a denied variable.
    """
    if secret_ref is None:
        return DEFAULT_SECRET_REF
    text = secret_ref.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    elif text.startswith(ENV_PREFIX):
        text = text[len(ENV_PREFIX) :]
    else:
        # Not a reference: possibly the secret itself, which is never repeated or stored.
        text = ""
    if not _ENV_NAME.fullmatch(text):
        raise InputError(
            field,
            "must name an environment variable holding the signing secret (env:NAME), not "
            "the secret itself: put the secret in an environment variable of the processes "
            "that deliver webhooks and give its name (env:NAME, or --secret-env NAME on the "
            f"command line; default: {DEFAULT_SECRET_REF})",
        )
    try:
        check_variable_allowed(text, field=field)
    except SecretError as error:
        raise InputError(field, error.reason) from None
    return check_text(f"{ENV_PREFIX}{text}", field=field, max_length=_SECRET_REF_MAX)


def checked_events(events: Iterable[str] | None, *, field: str = "events") -> list[str]:
    """The events, each known, without repeats, in WEBHOOK_EVENTS order; None: all of them.

    `completed` is accepted for `run.completed`.

    Raises:
        InputError: an unknown event name, or none at all.
    """
    if events is None:
        return list(WEBHOOK_EVENTS)
    chosen: set[str] = set()
    for event in events:
        name = event.strip()
        if not name.startswith("run."):
            name = f"run.{name}"
        if name not in WEBHOOK_EVENTS:
            raise InputError(
                field, f"unknown event {event!r}; expected one of {', '.join(WEBHOOK_EVENTS)}"
            )
        chosen.add(name)
    if not chosen:
        raise InputError(field, f"name at least one event of {', '.join(WEBHOOK_EVENTS)}")
    return [event for event in WEBHOOK_EVENTS if event in chosen]


def checked_agent_name(agent_name: str | None, *, field: str = "agent_name") -> str | None:
    """Raises:
    InputError: empty, too long, NUL."""
    if agent_name is None:
        return None
    if not agent_name.strip():
        raise InputError(field, "is empty; leave it out to subscribe to every agent's runs")
    return check_text(agent_name, field=field, max_length=_AGENT_MAX)


def new_webhook(
    url: str,
    *,
    events: Iterable[str] | None,
    agent_name: str | None,
    run_id: str | None,
    secret_ref: str | None,
) -> Webhook:
    """A webhook to store, every field checked (the run's existence is the store's to check).

    Raises:
        InputError: see the checks above; an agent and a run both given.
    """
    if run_id is not None and agent_name is not None:
        raise InputError(
            "agent_name", "a run's own webhook takes no agent (the run has one); give either"
        )
    return Webhook(
        webhook_id=str(uuid.uuid4()),
        url=checked_url(url),
        secret_ref=checked_secret_ref(secret_ref),
        events=tuple(checked_events(events)),
        agent_name=checked_agent_name(agent_name),
        run_id=run_id,
        created_at=utc_now(),
    )


def checked_status(status: str | None, *, field: str = "status") -> DeliveryStatus | None:
    """Raises:
    InputError: not a delivery status."""
    if status is None or status in DELIVERY_STATUSES:
        return status  # type: ignore[return-value] - checked against the closed set
    raise InputError(
        field, f"unknown delivery status {status!r}; expected one of {', '.join(DELIVERY_STATUSES)}"
    )


def checked_limit(limit: int, *, field: str = "limit") -> int:
    """Raises:
    InputError: below 1."""
    if limit < 1:
        raise InputError(field, f"{limit} is not a positive number")
    return limit
