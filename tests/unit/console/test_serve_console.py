"""``propdesk serve``'s status: the plain lines of a run and the final Rich view (accounts, instances, how it
ended), on a short window of the ES file played as fast as possible."""

from __future__ import annotations

import asyncio

from rich.console import Console

from propdesk.console.serve import render_serve, render_serve_summary, run_serve_plain
from propdesk.sessions.serve import ServeSession
from tests.kit.serve import es_window, sim_settings


def test_plain_lines_and_the_final_view_of_a_short_run() -> None:
    settings = sim_settings(
        [{"name": "combine"}], [{"name": "sma-es", "strategy": "sma_cross", "account": "combine", "state": "paused"}]
    )
    session = ServeSession(settings, speed=None, bars={"combine": es_window(20)})
    lines: list[str] = []
    summary = asyncio.run(run_serve_plain(session, lines.append, period_s=0.01))
    assert summary.completed and summary.signal == "" and summary.exit_code == 0
    assert "instance sma-es on account 1: paused, params v1" in lines
    assert lines[-1].startswith("serve completed after ")

    console = Console(record=True, width=200)
    console.print(render_serve(session))
    console.print(render_serve_summary(summary))
    text = console.export_text()
    for expected in ("combine", "ESZ5", "20/20", "sma-es", "sma_cross", "paused", "every replay reached its end"):
        assert expected in text, expected
