"""``propdesk api-key``: create, list and revoke the API keys of propdesk's HTTP API (:mod:`propdesk.api.keys`).

* ``create NAME [--scope read|trade|admin ...] [--allow-trade-remote] [--rate-per-minute N] [--burst N] [--json]``:
  stores a new key (hashed) and prints the full key **once** on stdout; it is never logged, stored or shown again.
* ``list [--json]``: every key: id, name, scopes, remote trading, rate, created, last used, revoked (never a
  secret, never a hash).
* ``revoke KEY_ID``: the key stops working at once for a new request (a running server checks every request).

Every command takes ``--url`` / ``--config`` as ``propdesk db`` does and migrates the database to the newest
revision first. :func:`register` adds the group to the main Typer app with the app's error handling.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from propdesk.cli.strategies import ErrorWrapper, JsonOption

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from propdesk.api.keys import ApiKey, ApiKeyStore

T = TypeVar("T")

UrlOption = Annotated[
    str | None,
    typer.Option(help="Database URL (default: $PROPDESK_DATABASE_URL, the config file's database.url, or SQLite)."),
]
ConfigOption = Annotated[Path | None, typer.Option(help="The config file (as propdesk --config).")]


def _with_store(url: str | None, config: Path | None, work: Callable[[ApiKeyStore], Awaitable[T]]) -> T:
    import asyncio

    from propdesk.api.keys import ApiKeyStore
    from propdesk.node.journaling import journal_url
    from propdesk.storage.db import create_engine_for
    from propdesk.storage.migrate import upgrade_async

    resolved = journal_url(url, config_path=config)

    async def _run() -> T:
        await upgrade_async(resolved)
        engine = create_engine_for(resolved)
        try:
            return await work(ApiKeyStore(engine))
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def _iso(ts_ns: int | None) -> str | None:
    return None if ts_ns is None else datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat(timespec="seconds")


def _key_dict(k: ApiKey) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "name": k.name,
        "scopes": sorted(s.value for s in k.scopes),
        "allow_trade_remote": k.allow_trade_remote,
        "rate_per_minute": k.rate_per_minute,
        "burst": k.burst,
        "created": _iso(k.created_ns),
        "last_used": _iso(k.last_used_ns),
        "revoked": _iso(k.revoked_ns),
    }


def api_key_create(
    name: Annotated[str, typer.Argument(help="A label for the key (who or what uses it).")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read, trade or admin (repeat or comma-separate; default read).")
    ] = None,
    allow_trade_remote: Annotated[
        bool,
        typer.Option(help="Let the key trade from a non-loopback client (prop firms: trades from your own machine)."),
    ] = False,
    rate_per_minute: Annotated[int, typer.Option(min=1, help="Sustained requests per minute.")] = 120,
    burst: Annotated[int, typer.Option(min=1, help="Requests allowed at once after an idle time.")] = 20,
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once (only its hash is stored: copy it now)."""
    from propdesk.api.keys import parse_scopes

    scopes = parse_scopes(scope or ["read"])

    async def work(store: ApiKeyStore) -> Any:
        return await store.create(
            name,
            scopes,
            now_ns=time.time_ns(),
            allow_trade_remote=allow_trade_remote,
            rate_per_minute=rate_per_minute,
            burst=burst,
        )

    created = _with_store(url, config, work)
    if as_json:
        typer.echo(json.dumps({**_key_dict(created.key), "key": created.token}))
        return
    info = _key_dict(created.key)
    typer.echo(f"API key {info['key_id']} ({info['name']}): scopes {', '.join(info['scopes'])}", err=True)
    typer.echo("This is the only time the key is shown; store it now (e.g. in a password manager):", err=True)
    typer.echo(created.token)


def api_key_list(url: UrlOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List the API keys (id, name, scopes, remote trading, rate, created, last used, revoked); never a secret."""

    async def work(store: ApiKeyStore) -> list[ApiKey]:
        return await store.list()

    keys = [_key_dict(k) for k in _with_store(url, config, work)]
    if as_json:
        typer.echo(json.dumps(keys))
        return
    if not keys:
        typer.echo("no API keys (create one with: propdesk api-key create NAME --scope read)")
        return
    for k in keys:
        state = f"revoked {k['revoked']}" if k["revoked"] else "live"
        remote = "remote trading allowed" if k["allow_trade_remote"] else "trades from loopback only"
        typer.echo(
            f"{k['key_id']}  {k['name']}  scopes={','.join(k['scopes'])}  {remote}  "
            f"{k['rate_per_minute']}/min burst {k['burst']}  created {k['created']}  "
            f"last used {k['last_used'] or 'never'}  {state}"
        )


def api_key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (propdesk api-key list).")],
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke an API key: it stops working for every new request."""

    async def work(store: ApiKeyStore) -> bool:
        return await store.revoke(key_id, now_ns=time.time_ns())

    if _with_store(url, config, work):
        typer.echo(f"API key {key_id} revoked")
    else:
        typer.echo(f"API key {key_id} was already revoked")


def register(app: typer.Typer, clear_errors: ErrorWrapper) -> None:
    """Add the ``api-key`` group to ``app``; every command goes through ``clear_errors``."""
    group = typer.Typer(
        help="The API keys of propdesk's HTTP API: create (shown once), list, revoke.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    group.command("create")(clear_errors(api_key_create))
    group.command("list")(clear_errors(api_key_list))
    group.command("revoke")(clear_errors(api_key_revoke))
    app.add_typer(group, name="api-key")
