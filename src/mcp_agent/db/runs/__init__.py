"""Durable runs: a run is a row in `fa_runs`, claimed by workers under a fenced lease, its
completed steps journaled so an attempt after a crash repeats none of them. See
docs/durable-runs.md."""
