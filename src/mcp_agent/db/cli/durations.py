"""Ages and times as the commands take them (`--since`, `--older-than`).

Units: `s` seconds, `min` minutes, `h` hours, `d` days, `w` weeks. A bare `m` is refused:
`prune --older-than 1m` once deleted everything older than one minute from a user who meant
a month. Months and years are refused too (their length varies): write days.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from mcp_agent.db.errors import InputError

#: Each unit as typed, and the timedelta argument it stands for.
UNITS = {"s": "seconds", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: How the units read in help texts.
UNITS_HELP = "s, min, h, d or w (e.g. 90min, 24h, 30d)"

_AGE = re.compile(r"^(?P<amount>\d+)\s*(?P<unit>[a-z]+)$")
_REFUSED_UNITS = {
    "m": "ambiguous: write {amount}min for minutes, or days for months ({days}d)",
    "mo": "months differ in length: write days ({days}d)",
    "month": "months differ in length: write days ({days}d)",
    "months": "months differ in length: write days ({days}d)",
    "y": "years differ in length: write days ({year}d)",
    "yr": "years differ in length: write days ({year}d)",
}


def parse_age(text: str, *, option: str) -> timedelta:
    """An age like `90min`, `24h`, `30d` or `4w`.

    Raises:
        InputError: naming `option`, for anything else (a bare `m` included).
    """
    match = _AGE.match(text.strip().lower())
    if match is None:
        raise InputError(f"{option} {text!r}", f"expected an age in {UNITS_HELP}")
    amount, unit = int(match["amount"]), match["unit"]
    if unit in _REFUSED_UNITS:
        reason = _REFUSED_UNITS[unit].format(amount=amount, days=amount * 30, year=amount * 365)
        raise InputError(f"{option} {text!r}", reason)
    if unit not in UNITS:
        raise InputError(f"{option} {text!r}", f"unknown unit {unit!r}; units are {UNITS_HELP}")
    try:
        return timedelta(**{UNITS[unit]: amount})
    except OverflowError:
        raise InputError(f"{option} {text!r}", "too long an age") from None


def age_cutoff(text: str, *, option: str) -> datetime:
    """The time `text` (an age) ago, in UTC."""
    age = parse_age(text, option=option)
    try:
        return datetime.now(UTC) - age
    except OverflowError:
        raise InputError(
            f"{option} {text!r}", "too far back; times from the year 1 can be given"
        ) from None


def parse_since(text: str | None, *, option: str = "--since") -> datetime | None:
    """An age (`90min`, `24h`, `7d`: that long ago) or an ISO timestamp (UTC when it names
    no zone), in UTC.

    Raises:
        InputError: naming `option`, for anything else.
    """
    if text is None:
        return None
    if text.strip()[:1].isdigit() and _AGE.match(text.strip().lower()):
        return age_cutoff(text, option=option)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{option} {text!r}", f"expected an age in {UNITS_HELP}, or an ISO timestamp"
        ) from None
    try:
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise InputError(
            f"{option} {text!r}", "too far from now; times from the year 1 to 9999 can be given"
        ) from None
