"""Executions carry token usage and cost; a workflow's totals are its children's sums."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from mcp_agent.db import FastAgent
from mcp_agent.db.executions.sql import SqlExecutionStore
from mcp_agent.db.models import EventRow
from mcp_agent.db.runtime import DatabaseRuntime
from mcp_agent.db.testing.fake_openai import FakeOpenAIServer
from mcp_agent.db.tour import calculator_server
from tests.support.cli import ainvoke

SERVER = Path(calculator_server.__file__)
ROUTE = '***FIXED_RESPONSE {"agent": "second", "confidence": "high", "reasoning": "r"}'


@pytest.fixture
def fake_openai():
    with FakeOpenAIServer() as server:
        yield server


async def test_workflow_totals_equal_upstreams_usage_and_are_priced(
    database_url: str, fake_openai: FakeOpenAIServer, fresh_upstream_state
) -> None:
    for args in (
        ["config", "set", "generic.base_url", fake_openai.base_url],
        ["config", "set", "logger.progress_display", "false"],
        ["config", "set", "logger.show_chat", "false"],
        ["config", "set", "logger.show_tools", "false"],
        ["servers", "add", "calculator", "--command", sys.executable, "--arg", str(SERVER)],
        ["models", "set-price", "generic/fake-model", "--input", "2", "--output", "8"],
    ):
        assert (await ainvoke(*args, "--database-url", database_url)).exit_code == 0

    fast = FastAgent("usage", database_url=database_url, parse_cli_args=False)

    @fast.agent(name="first", model="generic.fake-model", servers=["calculator"])
    @fast.agent(name="second", model="generic.fake-model")
    @fast.chain(name="pipeline", sequence=["first", "second"])
    @fast.parallel(name="fanout", fan_out=["first", "second"])
    @fast.router(name="dispatcher", agents=["first", "second"], model="passthrough")
    async def _workflows() -> None: ...

    async with fast.run() as app:
        await app.pipeline.send('CALL calculator-add {"a": 2, "b": 3}')
        await app.fanout.send("in parallel")
        await app.dispatcher.send(ROUTE)
        accumulated = [
            agent.usage_accumulator
            for agent in app._agents.values()
            if agent.usage_accumulator is not None
        ]
        upstream_input = sum(acc.cumulative_input_tokens for acc in accumulated)
        upstream_output = sum(acc.cumulative_output_tokens for acc in accumulated)

    async with await DatabaseRuntime.open(database_url) as runtime:
        store = SqlExecutionStore(runtime)
        roots = {root.agent_name: root for root in await store.roots()}
        trees = {name: await store.tree(root.execution_id) for name, root in roots.items()}
        async with runtime.sessions() as session:
            events = list(await session.scalars(select(EventRow).order_by(EventRow.event_id)))

    # Events are tagged with the session, the execution and the agent that emitted them.
    assert events and all(e.level in ("info", "warning", "error") for e in events)
    in_session = [e for e in events if e.session_id == fast.session_id]
    assert in_session, "events carry the session"
    tool_events = [e for e in in_session if "tool" in e.message.lower() and e.agent_name == "first"]
    assert tool_events, "the tool call's events name the agent"
    execution_ids = {r.execution_id for tree in trees.values() for r in tree}
    assert any(e.execution_id in execution_ids for e in in_session)

    assert set(roots) == {"pipeline", "fanout", "dispatcher"}
    assert sum(root.input_tokens for root in roots.values()) == upstream_input
    assert sum(root.output_tokens for root in roots.values()) == upstream_output
    for name, tree in trees.items():
        root = roots[name]
        children = [r for r in tree if r.parent_execution_id == root.execution_id]
        own = root.input_tokens - sum(child.input_tokens for child in children)
        assert own >= 0, name
        assert all(record.session_id == fast.session_id for record in tree)
    assert [c.agent_name for c in trees["pipeline"] if c.parent_execution_id] == ["first", "second"]
    assert {c.agent_name for c in trees["fanout"] if c.parent_execution_id} >= {"first", "second"}
    assert [c.agent_name for c in trees["dispatcher"] if c.parent_execution_id] == ["second"]

    pipeline = roots["pipeline"]
    expected = (
        Decimal(pipeline.input_tokens) * 2 + Decimal(pipeline.output_tokens) * 8
    ) / 1_000_000
    assert pipeline.cost == expected  # all its calls used the priced fake-model
    assert roots["dispatcher"].cost is not None  # the routed call is priced; passthrough is not

    url = ["--database-url", database_url]
    listed = await ainvoke("executions", "list", *url)
    assert pipeline.execution_id in listed.output
    shown = await ainvoke("executions", "show", pipeline.execution_id, *url)
    assert shown.exit_code == 0, shown.output
    assert "pipeline generate" in shown.output and "first generate" in shown.output
    assert f"{pipeline.input_tokens} in / {pipeline.output_tokens} out" in shown.output
    by_model = await ainvoke("usage", "--session", fast.session_id, *url)
    assert "fake-model" in by_model.output and "passthrough" in by_model.output
    by_agent = await ainvoke("usage", "--by", "agent", "--since", "1h", *url)
    assert "first" in by_agent.output and "second" in by_agent.output
    bad = await ainvoke("usage", "--since", "yesterday-ish", *url)
    assert bad.exit_code == 2 and "expected an age in s, min, h, d or w" in bad.output
