"""WebhookStore: subscriptions and per-run webhooks stored as given (validated first:
nothing is stored from bad input, and a literal secret is never repeated), and a run's end
turned into one pending delivery per matching webhook."""

from __future__ import annotations

import pytest

from mcp_agent.db.errors import InputError, UnknownValueError
from mcp_agent.db.webhooks.validation import DEFAULT_SECRET_REF, WEBHOOK_EVENTS
from tests.conformance.stores import Stores
from tests.support.webhooks import ended_run, store_run

URL = "https://hooks.example.com/fast-agent"


async def test_a_subscription_is_stored_with_defaults_and_listed(stores: Stores) -> None:
    added = await stores.webhooks.add(URL)
    assert added.url == URL
    assert added.events == WEBHOOK_EVENTS
    assert added.secret_ref == DEFAULT_SECRET_REF
    assert added.agent_name is None and added.run_id is None and added.disabled_at is None
    assert await stores.webhooks.get(added.webhook_id) == added
    assert await stores.webhooks.list() == [added]


async def test_events_agent_and_secret_are_kept_in_a_canonical_form(stores: Stores) -> None:
    added = await stores.webhooks.add(
        URL,
        events=["failed", "run.completed", "run.failed"],
        agent_name="bot",
        secret_ref="${HOOK_SECRET}",
    )
    assert added.events == ("run.completed", "run.failed")
    assert added.agent_name == "bot"
    assert added.secret_ref == "env:HOOK_SECRET"
    assert await stores.webhooks.get(added.webhook_id) == added


async def test_per_run_webhooks_are_listed_only_when_asked(stores: Stores) -> None:
    run = await store_run(stores.runtime, ended_run())
    subscription = await stores.webhooks.add(URL)
    own = await stores.webhooks.add("http://127.0.0.1:9/own", run_id=run.run_id)
    assert own.run_id == run.run_id and own.secret_ref == DEFAULT_SECRET_REF
    assert await stores.webhooks.list() == [subscription]
    assert await stores.webhooks.list(include_runs=True) == [subscription, own]
    assert await stores.webhooks.list(run_id=run.run_id) == [own]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("https:///nohost", "no host"),
        ("https://user:pw@example.com/x", "credentials"),
        ("https://example.com/x?token=abc123", "credentials"),
        ("https://exa mple.com/x", "whitespace"),
        ("https://example.com:99999/x", "not a valid URL"),
        ("https://example.com/" + "x" * 2000, "at most 2000"),
        ("https://example.com/\x00", "NUL"),
    ],
)
async def test_a_bad_url_is_refused_and_nothing_stored(
    stores: Stores, url: str, words: str
) -> None:
    with pytest.raises(InputError, match="url") as refused:
        await stores.webhooks.add(url)
    assert words in str(refused.value)
    assert await stores.webhooks.list(include_runs=True) == []


@pytest.mark.parametrize("secret", ["s3cr3t-value-1234", "whsec_abcdef", "env:", "env:1BAD", ""])
async def test_a_secret_that_is_not_a_reference_is_refused_without_repeating_it(
    stores: Stores, secret: str
) -> None:
    with pytest.raises(InputError) as refused:
        await stores.webhooks.add(URL, secret_ref=secret)
    message = str(refused.value)
    assert message.startswith("secret_ref:")
    assert "environment variable" in message
    if len(secret) > 4:
        assert secret not in message
    assert await stores.webhooks.list(include_runs=True) == []


async def test_the_encryption_key_and_database_url_cannot_sign(stores: Stores) -> None:
    for variable in ("FAST_AGENT_DB_SECRET_KEY", "FAST_AGENT_DATABASE_URL"):
        with pytest.raises(InputError, match=variable):
            await stores.webhooks.add(URL, secret_ref=f"env:{variable}")
    assert await stores.webhooks.list() == []


@pytest.mark.parametrize("events", [["run.started"], ["completed", "nope"], []])
async def test_unknown_or_no_events_are_refused(stores: Stores, events: list[str]) -> None:
    with pytest.raises(InputError, match="events"):
        await stores.webhooks.add(URL, events=events)
    assert await stores.webhooks.list() == []


async def test_a_run_webhook_takes_no_agent(stores: Stores) -> None:
    run = await store_run(stores.runtime, ended_run())
    with pytest.raises(InputError, match="agent_name"):
        await stores.webhooks.add(URL, run_id=run.run_id, agent_name="bot")
    with pytest.raises(InputError, match="agent_name"):
        await stores.webhooks.add(URL, agent_name="  ")
    assert await stores.webhooks.list(include_runs=True) == []


async def test_unknown_ids_are_errors(stores: Stores) -> None:
    with pytest.raises(UnknownValueError, match="no webhook 'nosuch'"):
        await stores.webhooks.get("nosuch")
    with pytest.raises(UnknownValueError, match="no webhook 'nosuch'"):
        await stores.webhooks.remove("nosuch")
    with pytest.raises(UnknownValueError, match="no webhook delivery 'nosuch'"):
        await stores.webhooks.delivery("nosuch")


async def test_a_run_end_makes_a_delivery_for_each_matching_webhook(stores: Stores) -> None:
    run = await store_run(stores.runtime, ended_run(agent_name="bot", status="completed"))
    other_run = await store_run(stores.runtime, ended_run(agent_name="bot"))
    every = await stores.webhooks.add(URL + "/every")
    mine = await stores.webhooks.add(URL + "/bot", agent_name="bot", secret_ref="env:BOT_HOOK")
    await stores.webhooks.add(URL + "/other-agent", agent_name="other")
    await stores.webhooks.add(URL + "/failures", events=["run.failed"])
    own = await stores.webhooks.add(URL + "/own", run_id=run.run_id)
    await stores.webhooks.add(URL + "/other-run", run_id=other_run.run_id)

    assert await stores.webhooks.enqueue_run_end(run) == 3
    made = await stores.webhooks.deliveries(run_id=run.run_id)
    assert {delivery.webhook_id for delivery in made} == {
        every.webhook_id,
        mine.webhook_id,
        own.webhook_id,
    }
    for delivery in made:
        assert delivery.status == "pending" and delivery.attempts == 0
        assert delivery.event == "run.completed" and delivery.attempt_log == ()
        assert delivery.payload["event"] == "run.completed"
        assert delivery.payload["delivery_id"] == delivery.delivery_id
        assert delivery.payload["webhook_id"] == delivery.webhook_id
        assert delivery.payload["run"]["run_id"] == run.run_id
        assert delivery.payload["run"]["status"] == "completed"
        assert delivery.payload["run"]["result"] == "the reply"
        assert delivery.payload["run"]["agent_name"] == "bot"
        assert await stores.webhooks.delivery(delivery.delivery_id) == delivery
    by_webhook = {delivery.webhook_id: delivery for delivery in made}
    assert by_webhook[mine.webhook_id].url == URL + "/bot"


async def test_a_failed_run_tells_the_failure_subscribers(stores: Stores) -> None:
    run = await store_run(stores.runtime, ended_run(status="failed"))
    failures = await stores.webhooks.add(URL, events=["run.failed"])
    await stores.webhooks.add(URL, events=["run.completed", "run.cancelled"])
    assert await stores.webhooks.enqueue_run_end(run) == 1
    (delivery,) = await stores.webhooks.deliveries(run_id=run.run_id)
    assert delivery.webhook_id == failures.webhook_id
    assert delivery.event == "run.failed"
    assert delivery.payload["run"]["error"] == "it broke"


async def test_a_run_that_has_not_ended_is_refused(stores: Stores) -> None:
    await stores.webhooks.add(URL)
    with pytest.raises(ValueError, match="has not ended"):
        await stores.webhooks.enqueue_run_end(ended_run(status="running"))


async def test_deliveries_are_filtered_newest_first_and_limited(stores: Stores) -> None:
    first = await store_run(stores.runtime, ended_run())
    second = await store_run(stores.runtime, ended_run())
    webhook = await stores.webhooks.add(URL)
    await stores.webhooks.enqueue_run_end(first)
    await stores.webhooks.enqueue_run_end(second)
    listed = await stores.webhooks.deliveries()
    assert [delivery.run_id for delivery in listed] == [second.run_id, first.run_id]
    assert [d.run_id for d in await stores.webhooks.deliveries(limit=1)] == [second.run_id]
    assert len(await stores.webhooks.deliveries(webhook_id=webhook.webhook_id)) == 2
    assert len(await stores.webhooks.deliveries(status="pending")) == 2
    assert await stores.webhooks.deliveries(status="delivered") == []
    with pytest.raises(InputError, match="status"):
        await stores.webhooks.deliveries(status="lost")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="limit"):
        await stores.webhooks.deliveries(limit=0)


async def test_a_removed_webhook_makes_no_more_deliveries_but_keeps_its_own(
    stores: Stores,
) -> None:
    before = await store_run(stores.runtime, ended_run())
    after = await store_run(stores.runtime, ended_run())
    webhook = await stores.webhooks.add(URL)
    await stores.webhooks.enqueue_run_end(before)
    assert await stores.webhooks.remove(webhook.webhook_id) == webhook
    assert await stores.webhooks.list() == []
    assert await stores.webhooks.enqueue_run_end(after) == 0
    (kept,) = await stores.webhooks.deliveries()
    assert kept.run_id == before.run_id and kept.webhook_id is None and kept.url == URL
