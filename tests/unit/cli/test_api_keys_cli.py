"""``propdesk api-key create | list | revoke`` on both backends: the key is printed once and never listed."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from propdesk.api.keys import ApiKeyStore, Scope
from propdesk.cli import app
from propdesk.storage.db import create_engine_for
from tests.unit.storage.conftest import empty_db_url, pg_database  # noqa: F401

runner = CliRunner()


def _verify(url: str, token: str) -> set[Scope] | None:
    async def run() -> set[Scope] | None:
        engine = create_engine_for(url)
        try:
            key = await ApiKeyStore(engine).verify(token)
            return set(key.scopes) if key else None
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_create_list_revoke(empty_db_url: str) -> None:  # noqa: F811
    url = empty_db_url
    res = runner.invoke(app, ["api-key", "create", "bot", "--scope", "read,trade", "--url", url])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip()
    assert token.startswith("pdk_") and "only time" in res.stderr
    assert _verify(url, token) == {Scope.READ, Scope.TRADE}

    res = runner.invoke(app, ["api-key", "list", "--url", url, "--json"])
    listed = json.loads(res.stdout)
    assert [(k["name"], k["scopes"], k["revoked"]) for k in listed] == [("bot", ["read", "trade"], None)]
    assert token not in res.stdout and token.split("_", 2)[2] not in res.stdout  # the secret (it may hold "_" itself)
    key_id = listed[0]["key_id"]
    assert token.startswith(f"pdk_{key_id}_")

    res = runner.invoke(app, ["api-key", "list", "--url", url])
    assert key_id in res.stdout and "trades from loopback only" in res.stdout

    res = runner.invoke(app, ["api-key", "revoke", key_id, "--url", url])
    assert res.exit_code == 0 and "revoked" in res.stdout
    assert _verify(url, token) is None
    res = runner.invoke(app, ["api-key", "revoke", key_id, "--url", url])
    assert "already revoked" in res.stdout


def test_bad_scope_and_unknown_id_are_one_line_errors(empty_db_url: str) -> None:  # noqa: F811
    res = runner.invoke(app, ["api-key", "create", "bot", "--scope", "root", "--url", empty_db_url])
    assert res.exit_code == 2 and "unknown API key scope 'root'" in res.stderr
    res = runner.invoke(app, ["api-key", "revoke", "nope", "--url", empty_db_url])
    assert res.exit_code == 2 and "no API key has the id 'nope'" in res.stderr


def test_create_json_prints_the_key_once(empty_db_url: str) -> None:  # noqa: F811
    res = runner.invoke(
        app, ["api-key", "create", "ci", "--scope", "admin", "--allow-trade-remote", "--json", "--url", empty_db_url]
    )
    info = json.loads(res.stdout)
    assert info["key"].startswith(f"pdk_{info['key_id']}_") and info["allow_trade_remote"] is True
