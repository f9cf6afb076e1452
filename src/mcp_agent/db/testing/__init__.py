"""Offline stand-ins for exercising fast-agent-db without a provider key."""
