"""``propdesk serve``: the long-running desk (:mod:`propdesk.sessions.serve`) from the ``[serve]`` settings.

With no ``[[serve.accounts]]`` it runs one simulated 50K Combine account (preset ``topstep-50k-combine``) replaying
the ES file under ``[serve] data_dir`` (``../shared/data`` beside the checkout, as the README's ``propdesk run
--replay ../shared/data/...``) with one ``sma_cross`` instance, so it works out of the box.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from propdesk.cli.options import JournalUrlOption
from propdesk.cli.strategies import ErrorWrapper, JsonOption

if TYPE_CHECKING:
    from propdesk.config import Settings
    from propdesk.sessions.serve import ServeSession

__all__ = ["register"]


def register(app: typer.Typer, clear_errors: ErrorWrapper, settings: Callable[[], Settings]) -> None:
    """Add ``propdesk serve`` to ``app`` (errors through ``clear_errors``; ``settings()``: the process's settings)."""

    @app.command()
    @clear_errors
    def serve(  # noqa: PLR0917 - Typer options
        speed: Annotated[
            str | None,
            typer.Option(
                help="Replay speed of sim accounts, a multiple of real time; 0 or 'max' = as fast as possible "
                "(default: [serve] speed, 3600)."
            ),
        ] = None,
        duration: Annotated[
            float | None, typer.Option("--duration", help="Stop after this many wall seconds (default: run on).")
        ] = None,
        no_console: Annotated[
            bool, typer.Option("--no-console", help="Plain status lines instead of the live view (CI, pipes).")
        ] = False,
        as_json: JsonOption = False,
        journal: Annotated[
            bool | None,
            typer.Option(
                "--journal/--no-journal",
                help="Journal the accounts and keep the instances (default: journal.enabled); without a journal "
                "instances are not kept across restarts.",
            ),
        ] = None,
        journal_url: JournalUrlOption = None,
        api: Annotated[
            bool,
            typer.Option(
                "--api/--no-api",
                help="Serve the REST and WebSocket API on [api] host:port (default 127.0.0.1:8000) while the desk "
                "runs; it needs the journal (its keys and the event stream live there). Keys: propdesk api-key create.",
            ),
        ] = True,
        port: Annotated[
            int | None, typer.Option("--port", min=0, max=65535, help="The API's TCP port (default: [api] port).")
        ] = None,
    ) -> None:
        """Run the desk: the [serve] accounts (sim: replaying real bars) with their strategy instances, managed at
        runtime, until every replay ends, --duration, Ctrl-C (exit 130) or SIGTERM (exit 0).

        Instances and their parameter versions are kept in the journal; after a restart each one resumes once its
        account is reconciled, and not while the account is locked out. Positions and working orders stay as they
        are at the stop. With no [serve] accounts configured: one simulated 50K Combine replaying the ES file with
        one sma_cross instance.
        """
        from propdesk.brokers.sim.replay import parse_speed  # noqa: PLC0415 - heavy imports only when serving
        from propdesk.console.display import plain_writer  # noqa: PLC0415
        from propdesk.console.serve import (  # noqa: PLC0415
            render_serve_summary,
            run_serve_plain,
            run_serve_with_console,
        )
        from propdesk.node.journaling import NodeJournal  # noqa: PLC0415
        from propdesk.sessions.live import projectx_settings  # noqa: PLC0415
        from propdesk.sessions.serve import (  # noqa: PLC0415
            ServeSession,
            ServeSummary,
            resolve_live_accounts,
            serve_plan,
        )

        cfg = settings()
        pace = (cfg.serve.speed or None) if speed is None else parse_speed(speed)
        node_journal = (
            NodeJournal(journal_url, prestart=True) if (cfg.journal.enabled if journal is None else journal) else None
        )
        console, err = Console(), Console(stderr=True)
        out = err if as_json else console
        live = None
        if any(a.broker == "projectx" for a in serve_plan(cfg.serve)[0]):
            px = projectx_settings()  # credentials from the environment only
            with err.status("resolving the ProjectX accounts"):
                live = asyncio.run(resolve_live_accounts(cfg.serve, px))
        with err.status("loading the accounts' data"):
            session = ServeSession(cfg.serve, journal=node_journal, speed=pace, live=live)

        if api and node_journal is None:
            err.print(
                "serve: no API without the journal (its keys and the event stream live there); --no-api to silence"
            )
        api_on = api and node_journal is not None

        async def main() -> ServeSummary:
            timer = None
            if duration is not None:
                timer = asyncio.get_running_loop().call_later(max(duration, 0.0), session.stop)
            api_task = asyncio.create_task(serve_api(session, cfg, port, err)) if api_on else None
            try:
                if no_console or not out.is_terminal:
                    return await run_serve_plain(session, plain_writer(out), period_s=cfg.serve.status_s)
                return await run_serve_with_console(session, out, refresh_per_s=1.0 / cfg.serve.status_s)
            finally:
                if timer is not None:
                    timer.cancel()
                if api_task is not None:
                    api_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await api_task

        summary = asyncio.run(main())
        if as_json:
            typer.echo(json.dumps(summary.to_json_dict(), default=str))
        elif no_console or not out.is_terminal:
            console.print(render_serve_summary(summary))
        if summary.exit_code:
            raise typer.Exit(code=summary.exit_code)


async def serve_api(session: ServeSession, cfg: Settings, port: int | None, err: Console) -> None:
    """Run the API beside ``session`` once its journal is open (its desks, stream and database engine), until
    cancelled; then stop it. A port that cannot be bound is said on ``err`` and the desk runs on without the API.
    """
    from propdesk.api.app import create_app  # noqa: PLC0415 - the web stack only when serving
    from propdesk.api.auth import Authenticator  # noqa: PLC0415
    from propdesk.api.keys import ApiKeyStore  # noqa: PLC0415
    from propdesk.api.server import ApiServer  # noqa: PLC0415

    await session.started.wait()
    engine = session.engine
    if engine is None:
        return
    app = create_app(session.service, session.stream, Authenticator(ApiKeyStore(engine)), cfg.api, engine=engine)
    server = ApiServer(app, cfg.api, port=port)
    try:
        await server.start()
    except RuntimeError as exc:
        err.print(f"serve: the API is not served: {exc}")
        return
    err.print(f"serve: API on {server.url}/api/v1 (OpenAPI: {server.url}/api/v1/openapi.json)")
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
