"""Names of the environment variables fast-agent-db reads.

This module imports nothing, so the drop-in activation can read the variables when upstream's
FastAgent is imported without paying for SQLAlchemy when no database is configured.
"""

DATABASE_URL_ENV = "FAST_AGENT_DATABASE_URL"
