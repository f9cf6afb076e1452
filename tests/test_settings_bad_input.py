"""Every bad input names what is wrong and where, and changes nothing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mcp_agent.db.cli.app import app

runner = CliRunner()

GOOD = "default_model: passthrough\nmcp:\n  servers:\n    calc: {command: python}\n"

BAD_CONFIGS = [
    pytest.param(
        "default_model: passthrough\nmcp:\n  servers:\n    a: {command: x\n",
        "line 5",
        id="malformed-yaml",
    ),
    pytest.param(
        "antropic:\n  base_url: http://x\n",
        "antropic: unknown section or provider",
        id="unknown-provider",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a: {transport: carrier-pigeon, command: x}\n",
        "mcp.servers.a.transport",
        id="unknown-transport",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a:\n      command: x\n      roots: [{uri: http://not-a-file}]\n",
        "mcp.servers.a.roots.0.uri",
        id="invalid-root-uri",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a: {command: x}\n    a: {command: y}\n",
        "duplicate key 'a' (first defined on line 3)",
        id="duplicate-server",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a: {command: x, sampling: {model: no-such-model}}\n",
        "mcp.servers.a.sampling.model: unknown model 'no-such-model'",
        id="unknown-sampling-model",
    ),
    pytest.param(
        "default_model: gpt-nonexistent-9\n",
        "default_model: unknown model",
        id="unknown-default-model",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a: {command: x, comand: y}\n",
        "mcp.servers.a.comand: unknown server field",
        id="unknown-server-field",
    ),
    pytest.param(
        "logger:\n  levle: debug\n",
        "logger.levle: unknown field",
        id="unknown-logger-field",
    ),
    pytest.param("- just\n- a list\n", "the top level must be a mapping", id="not-a-mapping"),
    # Secrets: each is named with its field, and the value is never echoed (see also
    # test_secrets_never_leak.py for every place a secret can be planted).
    pytest.param(
        "mcp:\n  servers:\n    a: {command: x, env: {BRAVE_KEY: brave-3141}}\n",
        "mcp.servers.a.env.BRAVE_KEY: holds a literal secret (the name 'BRAVE_KEY' contains",
        id="literal-secret-under-a-secret-name",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a:\n      transport: http\n      url: http://h/mcp\n"
        "      headers: {Authorization: 'Bearer ${TOKEN:tok-3141}'}\n",
        "mcp.servers.a.headers.Authorization: ${TOKEN:...}: a secret cannot carry a default",
        id="template-with-a-default",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a:\n      transport: http\n      url: http://h/mcp\n"
        "      headers: {Authorization: 'tok-3141 ${TOKEN}'}\n",
        "mcp.servers.a.headers.Authorization: mixes literal secret text with ${...} references",
        id="template-with-literal-secret-text",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a: {transport: http, url: 'http://me:pw-3141@h/mcp'}\n",
        "mcp.servers.a.url: holds a literal secret (the URL's user-info)",
        id="credentials-in-a-url",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a: {command: x, env: {TOKEN: 'env:not a name-3141'}}\n",
        "mcp.servers.a.env.TOKEN: is not a valid env: reference",
        id="malformed-reference",
    ),
    pytest.param(
        "mcp:\n  servers:\n    a: {command: x, args: ['${FAST_AGENT_DB_SECRET_KEY}']}\n",
        "mcp.servers.a.args.0: refers to FAST_AGENT_DB_SECRET_KEY, which settings cannot",
        id="denied-variable",
    ),
]


@pytest.mark.parametrize(("bad_yaml", "expected"), BAD_CONFIGS)
def test_bad_config_is_refused_and_the_database_is_unchanged(
    database_url, tmp_path, bad_yaml: str, expected: str
) -> None:
    good = tmp_path / "good" / "fastagent.config.yaml"
    good.parent.mkdir()
    good.write_text(GOOD)
    assert (
        runner.invoke(
            app, ["config", "import", str(good), "--database-url", database_url]
        ).exit_code
        == 0
    )
    before = runner.invoke(app, ["config", "show", "--database-url", database_url]).output
    history = runner.invoke(app, ["config", "history", "--database-url", database_url]).output

    bad = tmp_path / "bad" / "fastagent.config.yaml"
    bad.parent.mkdir()
    bad.write_text(bad_yaml)
    result = runner.invoke(app, ["config", "import", str(bad), "--database-url", database_url])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert str(bad) in result.output, "the message names the file"
    assert "3141" not in result.output, "a secret value is never echoed"
    assert "Traceback" not in result.output

    assert runner.invoke(app, ["config", "show", "--database-url", database_url]).output == before
    assert (
        runner.invoke(app, ["config", "history", "--database-url", database_url]).output == history
    )


def test_a_missing_file_is_named(database_url, tmp_path) -> None:
    result = runner.invoke(
        app, ["config", "import", str(tmp_path / "nope.yaml"), "--database-url", database_url]
    )
    assert result.exit_code == 2
    assert "nope.yaml: cannot be read" in result.output


def test_removing_a_server_that_does_not_exist(database_url) -> None:
    result = runner.invoke(app, ["servers", "remove", "ghost", "--database-url", database_url])
    assert result.exit_code == 2
    assert "mcp.servers.ghost: no MCP server with this name" in result.output


def test_prices_for_an_unknown_provider_are_refused(database_url) -> None:
    result = runner.invoke(
        app, ["models", "set-price", "acme/model-1", "--input", "1", "--database-url", database_url]
    )
    assert result.exit_code == 2
    assert "unknown provider 'acme'" in result.output
