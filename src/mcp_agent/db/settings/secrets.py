"""Secrets in configuration: what counts as one, how it is stored, and when it is read.

What is a secret (strings only; numbers, booleans, empty strings and hints such as
`<your-api-key>` never are):

* every value that came from the secrets file, wherever it sits (server `args` included);
* a value whose name contains one of `SECRET_NAME_WORDS` (an env variable, a header, a provider
  or logger key, a key of a nested mapping): `is_secret_name`;
* the credentials of a URL anywhere in a value: its user-info (the password, or the user name
  when there is no password) and the values of credential-looking query parameters.

A secret is stored as one of:

* `env:NAME`: the environment variable NAME, read when the secret is needed. Upstream's own
  `${NAME}` placeholder is accepted on input and stored in this form.
* `tpl:TEXT`: a reference template, a string with `${NAME}` references whose secret parts are
  all references (`Bearer ${API_TOKEN}`, `https://me:${PW}@host/x?token=${T}`), resolved by
  substituting the variables when used and exported as TEXT, which upstream substitutes itself.
  Outside the references a template may hold only a leading authorization scheme (one of
  `AUTHORIZATION_SCHEMES`: `Bearer `, `Basic `, `Token `...) and punctuation; in a URL,
  everything but the credentials is free.
  A secret template cannot carry a default (`${NAME:default}`): the default would be a literal
  stored in plaintext.
* `enc:v1:TOKEN`: a literal secret the user asked to store (`--encrypt-secrets`), Fernet-encrypted
  with the key in FAST_AGENT_DB_SECRET_KEY (`fast-agent-db config keygen`).

A literal secret is refused unless encryption was requested. Settings cannot reference the
variables in `DENIED_VARIABLES` (the encryption key and the database URL) at all: not at import,
not at resolution, and MCP servers never receive them in their environment.

Plaintext secrets never reach the database, an export or a log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from mcp_agent.db.errors import FastAgentDbError
from mcp_agent.db.urls import DATABASE_URL_ENV

SECRET_KEY_ENV = "FAST_AGENT_DB_SECRET_KEY"
ENV_PREFIX = "env:"
ENCRYPTED_PREFIX = "enc:v1:"
TEMPLATE_PREFIX = "tpl:"
#: upstream's placeholder for "no key here" (ProviderKeyManager treats it as unset).
API_KEY_HINT_TEXT = "<your-api-key-here>"
#: How a stored secret is shown: an encrypted one, and a plaintext one stored before the rules.
ENCRYPTED_MASK = "<encrypted>"
SECRET_MASK = "<secret>"

#: A name containing one of these (case-insensitive) holds a secret ("pass" covers password).
SECRET_NAME_WORDS = (
    "key",
    "token",
    "secret",
    "password",
    "pass",
    "auth",
    "credential",
    "cookie",
    "session",
)
#: Variables settings cannot reference: the key that decrypts every stored secret, and the
#: database URL (with its password). MCP servers never get them in their environment.
DENIED_VARIABLES = (SECRET_KEY_ENV, DATABASE_URL_ENV)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENCRYPTED = re.compile(re.escape(ENCRYPTED_PREFIX) + r"[A-Za-z0-9_=-]+")
#: `${...}` as upstream finds it (upstream needs a non-empty inside; `${}` is an error here).
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_HINT = re.compile(r"<[^<>]*\byour[^<>]*>", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*")
_URL_START = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://")
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?P<userinfo>[^/?#@\s]*)@")
_QUERY_PARAMETER = re.compile(r"[?&;#](?P<name>[^=&;#?\s]+)=(?P<value>[^&;#\s]*)")
_SIGNATURE = re.compile(r"(^|[^a-z])sig([^a-z]|$)|signature", re.IGNORECASE)
#: Authorization schemes a secret template may start with (IANA's registry and common ones):
#: a known word, so a literal secret cannot pass for one.
AUTHORIZATION_SCHEMES = (
    "Basic",
    "Bearer",
    "Digest",
    "DPoP",
    "GNAP",
    "HOBA",
    "Mutual",
    "Negotiate",
    "OAuth",
    "PrivateToken",
    "Token",
    "Bot",
    "ApiKey",
    "Api-Key",
    "Key",
    "JWT",
    "SSWS",
    "Splunk",
    "GenieKey",
)
_SCHEME_WORD = re.compile(
    "(?:" + "|".join(map(re.escape, AUTHORIZATION_SCHEMES)) + r")\s+", re.IGNORECASE
)


class SecretError(FastAgentDbError):
    """A secret cannot be stored or resolved; the message names the field and the variable."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# What is a secret


def secret_name_word(name: str) -> str | None:
    """The secret word `name` contains (`BRAVE_KEY` -> "key"), or None."""
    lowered = name.lower()
    return next((word for word in SECRET_NAME_WORDS if word in lowered), None)


def is_secret_name(name: str) -> bool:
    """Whether a value under this name (env variable, header, setting key) is a secret."""
    return secret_name_word(name) is not None


def is_credential_parameter(name: str) -> bool:
    """Whether a URL query parameter of this name carries a credential (token, key, sig...)."""
    return is_secret_name(name) or bool(_SIGNATURE.search(name))


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    what: str


def _credential_spans(text: str) -> list[_Span]:
    """The credentials of every URL in `text`: user-info and credential query values."""
    spans: list[_Span] = []
    for url in _URL.finditer(text):
        body, offset = url.group(0), url.start()
        userinfo = _USERINFO.match(body)
        if userinfo:
            start, end = userinfo.span("userinfo")
            user, colon, _password = userinfo.group("userinfo").partition(":")
            if colon:  # with a password, the user name is not the credential
                start += len(user) + 1
            if end > start:
                spans.append(_Span(offset + start, offset + end, "the URL's user-info"))
        for parameter in _QUERY_PARAMETER.finditer(body):
            name = parameter.group("name")
            if parameter.group("value") and is_credential_parameter(name):
                start, end = parameter.span("value")
                spans.append(
                    _Span(offset + start, offset + end, f"the URL's query parameter {name!r}")
                )
    return spans


def url_has_credentials(text: str) -> bool:
    """Whether a URL in `text` carries user-info or a credential-looking query parameter."""
    return bool(_credential_spans(text))


def is_hint(value: str) -> bool:
    """`<your_brave_api_key>`: a hint for the user, as upstream's examples write, not a secret."""
    return bool(_HINT.fullmatch(value.strip()))


def secret_reason(value: object, *, name: str | None, from_secrets_file: bool) -> str | None:
    """Why `value` is a secret ("a value from the secrets file", "the name 'PGPASS' contains
    'pass'", "the URL's user-info"), or None when it is not one."""
    if not isinstance(value, str) or not value.strip() or is_hint(value):
        return None
    if from_secrets_file:
        return "a value from the secrets file"
    word = secret_name_word(name) if name is not None else None
    if word is not None:
        return f"the name {name!r} contains {word!r}"
    spans = _credential_spans(value)
    return spans[0].what if spans else None


# ---------------------------------------------------------------------------------------------
# References


def is_reference(value: object) -> bool:
    """A stored reference: `env:NAME`, `enc:v1:TOKEN` or `tpl:TEXT` (well-formed)."""
    if not isinstance(value, str):
        return False
    if value.startswith(ENV_PREFIX):
        return bool(_ENV_NAME.fullmatch(value[len(ENV_PREFIX) :]))
    if value.startswith(TEMPLATE_PREFIX):
        return "${" in value
    return bool(_ENCRYPTED.fullmatch(value))


def is_denied_variable(name: str) -> bool:
    return name.upper() in DENIED_VARIABLES


def check_variable_allowed(name: str, *, field: str) -> None:
    """Raises:
    SecretError: `name` is on the deny list."""
    if is_denied_variable(name):
        raise SecretError(
            field,
            f"refers to {name}, which settings cannot reference (denied: "
            f"{', '.join(DENIED_VARIABLES)}: the key to every stored secret and the database "
            "password never leave fast-agent-db)",
        )


def referenced_variables(value: str) -> list[str]:
    """Every variable `value` names: `${NAME}` / `${NAME:default}` placeholders (as upstream
    substitutes them anywhere) and an `env:NAME` reference."""
    names = [match.group(1).partition(":")[0].strip() for match in _PLACEHOLDER.finditer(value)]
    if value.startswith(ENV_PREFIX):
        names.append(value[len(ENV_PREFIX) :])
    return [name for name in names if name]


def _template_variables(text: str, *, field: str) -> list[str]:
    """The variables of a secret template, each checked.

    Raises:
        SecretError: a malformed `${...}`, a default, or a denied variable.
    """
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        name, has_default, _default = match.group(1).partition(":")
        if not _ENV_NAME.fullmatch(name):
            raise SecretError(
                field,
                "has a ${...} that is not a variable reference "
                "(expected ${NAME}: letters, digits and _)",
            )
        if has_default:
            raise SecretError(
                field,
                f"${{{name}:...}}: a secret cannot carry a default (it would be stored as "
                f"plaintext); set {name} instead",
            )
        check_variable_allowed(name, field=field)
        names.append(name)
    return names


def _only_references_in(text: str, spans: list[_Span]) -> bool:
    """Each credential span is exactly one `${NAME}`."""
    return all(_PLACEHOLDER.fullmatch(text[span.start : span.end]) for span in spans)


def _only_a_scheme_outside_references(text: str) -> bool:
    """Outside the references: an optional leading scheme word and punctuation only."""
    first, *rest = _PLACEHOLDER.split(text)[::2]
    scheme = _SCHEME_WORD.match(first)
    if scheme:
        first = first[scheme.end() :]
    return not any(character.isalnum() for part in (first, *rest) for character in part)


def _template_rule(text: str, *, whole_value: bool) -> str | None:
    """None when every secret part of the template is a reference, else what is wrong."""
    if whole_value and not _URL_START.match(text):
        if _only_a_scheme_outside_references(text):
            return None
        return (
            "outside its ${...} references a secret may only hold a leading authorization "
            "scheme such as 'Bearer ' and punctuation"
        )
    spans = _credential_spans(text)
    literal = [span.what for span in spans if not _only_references_in(text, [span])]
    if not literal:
        return None
    return f"{literal[0]} must be a single ${{NAME}} reference"


def stored_form(value: str, *, field: str, reason: str, encrypt_literals: bool) -> str:
    """How a secret value given on input is stored: `env:`, `tpl:` or `enc:v1:`.

    `reason` says why the value is a secret (see `secret_reason`); a value that is secret as a
    whole (its name, the secrets file) must be a reference apart from a scheme word, a URL only
    in its credentials.

    Raises:
        SecretError: a literal secret without `encrypt_literals`, a malformed reference, a
            default or a denied variable in a template, or a missing encryption key.
    """
    for prefix in (ENV_PREFIX, ENCRYPTED_PREFIX, TEMPLATE_PREFIX):
        if value.startswith(prefix):
            return _checked_reference(value, prefix, field=field)
    whole = _PLACEHOLDER.fullmatch(value.strip())
    if whole:
        (name,) = _template_variables(value.strip(), field=field)
        return f"{ENV_PREFIX}{name}"
    if _PLACEHOLDER.search(value):
        _template_variables(value, field=field)
        whole_value = not reason.startswith("the URL's")
        problem = _template_rule(value, whole_value=whole_value)
        if problem is None:
            return TEMPLATE_PREFIX + value
        raise SecretError(
            field,
            f"mixes literal secret text with ${{...}} references ({reason}): {problem}; "
            "or put the whole value in one variable (env:VARIABLE)",
        )
    if not encrypt_literals:
        raise SecretError(
            field,
            f"holds a literal secret ({reason}). Store a reference instead (env:VARIABLE or "
            f"${{VARIABLE}}), or pass --encrypt-secrets with {SECRET_KEY_ENV} set to store it "
            "encrypted",
        )
    return ENCRYPTED_PREFIX + _fernet(field, encrypting=True).encrypt(value.encode()).decode()


def _checked_reference(value: str, prefix: str, *, field: str) -> str:
    body = value[len(prefix) :]
    if prefix == ENV_PREFIX:
        if not _ENV_NAME.fullmatch(body):
            raise SecretError(field, "is not a valid env: reference (env:NAME, NAME a variable)")
        check_variable_allowed(body, field=field)
    elif prefix == TEMPLATE_PREFIX:
        if not _template_variables(body, field=field):
            raise SecretError(field, "is a tpl: template without any ${NAME} reference")
    elif not _ENCRYPTED.fullmatch(value):
        raise SecretError(field, "is not a valid encrypted value (enc:v1:TOKEN)")
    return value


def as_reference(value: str, *, field: str, encrypt_literals: bool) -> str:
    """The stored form of a value that is a secret wherever it sits (an API key, server auth).

    Raises:
        SecretError: see `stored_form`.
    """
    return stored_form(
        value, field=field, reason="a secret field", encrypt_literals=encrypt_literals
    )


def is_literal_secret(value: object, *, name: str | None) -> bool:
    """A plaintext secret as stored before these rules (or typed into a table by hand): a
    secret by its name or URL that is not in a stored form."""
    reason = secret_reason(value, name=name, from_secrets_file=False)
    if reason is None or is_reference(value):
        return False
    try:
        stored_form(str(value), field="-", reason=reason, encrypt_literals=False)
    except SecretError:
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Resolution, display, export


def resolve(reference: str, *, field: str) -> str:
    """The plaintext of a stored secret, read now; other values pass through.

    Raises:
        SecretError: naming the missing environment variable, a denied one, or the missing key.
    """
    if not is_reference(reference):
        return reference
    if reference.startswith(ENV_PREFIX):
        value = _variable(reference[len(ENV_PREFIX) :], field=field)
    elif reference.startswith(TEMPLATE_PREFIX):
        text = reference[len(TEMPLATE_PREFIX) :]
        values = {
            name: _variable(name, field=field) for name in _template_variables(text, field=field)
        }
        value = _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)
    else:
        from cryptography.fernet import InvalidToken

        try:
            value = _fernet(field).decrypt(reference[len(ENCRYPTED_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretError(
                field, f"cannot be decrypted with the key in {SECRET_KEY_ENV} (another key?)"
            ) from None
    remember_plaintext(value)
    return value


def _variable(name: str, *, field: str) -> str:
    check_variable_allowed(name, field=field)
    value = os.environ.get(name)
    if value is None:
        raise SecretError(field, f"refers to the environment variable {name}, which is not set")
    remember_plaintext(value)
    return value


def mask(value: str) -> str:
    """How a stored secret is shown: references as they are, encrypted values hidden."""
    if value.startswith(ENCRYPTED_PREFIX):
        return ENCRYPTED_MASK
    return value


def export_placeholder(value: str, *, suggested_env: str) -> str:
    """The YAML form upstream loads: `${NAME}` or the template text (upstream substitutes
    both); an encrypted value becomes `${suggested_env}`, for the user to set."""
    if value.startswith(ENV_PREFIX) and is_reference(value):
        return "${" + value[len(ENV_PREFIX) :] + "}"
    if value.startswith(TEMPLATE_PREFIX) and is_reference(value):
        return value[len(TEMPLATE_PREFIX) :]
    return "${" + suggested_env + "}"


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _fernet(field: str, *, encrypting: bool = False):  # noqa: ANN202 - a lazy import
    from cryptography.fernet import Fernet

    key = os.environ.get(SECRET_KEY_ENV)
    if not key and encrypting:
        raise SecretError(
            field,
            f"cannot be encrypted: {SECRET_KEY_ENV} is not set "
            "(make a key with: fast-agent-db config keygen)",
        )
    if not key:
        raise SecretError(
            field, f"is stored encrypted and needs the key in {SECRET_KEY_ENV}, which is not set"
        )
    try:
        return Fernet(key.encode())
    except ValueError:
        raise SecretError(
            SECRET_KEY_ENV,
            "is not a valid key (32 url-safe base64-encoded bytes); "
            "make one with: fast-agent-db config keygen",
        ) from None


# Plaintexts resolved in this process, so log and event writers can scrub them.
_resolved_plaintexts: set[str] = set()


def remember_plaintext(value: str) -> None:
    if len(value) >= 4:
        _resolved_plaintexts.add(value)


def scrub(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every secret resolved in this process replaced by `***`."""
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted({*_resolved_plaintexts, *extra}, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text
