"""The `fast-agent-db` command line."""

from __future__ import annotations

import codecs
import sys

#: Error handler for the console streams: text the terminal cannot encode is written anyway.
UNENCODABLE_TEXT_HANDLER = "fast_agent_db_unencodable"


def _write_unencodable(error: UnicodeError) -> tuple[bytes, int]:
    """A surrogate standing for a byte (how Python decodes invalid UTF-8 in arguments) goes
    out as that byte, as the user typed it; anything else the terminal cannot encode as
    `\\uXXXX`. Stored text is never changed: this is only how it is printed."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    written = bytearray()
    for character in error.object[error.start : error.end]:
        code = ord(character)
        if 0xDC80 <= code <= 0xDCFF:
            written.append(code - 0xDC00)
        else:
            written += f"\\u{code:04x}".encode("ascii")
    return bytes(written), error.end


def _print_whatever_the_terminal() -> None:
    codecs.register_error(UNENCODABLE_TEXT_HANDLER, _write_unencodable)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors=UNENCODABLE_TEXT_HANDLER)


def main() -> None:
    _print_whatever_the_terminal()
    from mcp_agent.db.cli.app import app, hoist_go_options

    app(args=hoist_go_options(sys.argv[1:]))
