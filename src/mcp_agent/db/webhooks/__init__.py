"""Webhooks: where to POST when a run ends (subscriptions and per-run webhooks), the outbox a
run's end writes in its own transaction, and the deliverer that POSTs, signs and retries.
See docs/durable-runs.md."""
