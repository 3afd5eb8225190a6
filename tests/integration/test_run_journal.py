"""``propdesk run --replay --risk ...`` journals the risk engine's account snapshots and end-of-day balances (issue 5:
"end-of-day account snapshots (the trailing-drawdown floor depends on them)"), and a node restored from that journal
gets the same end-of-day history and trailing drawdown floor back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from propdesk.backtest.cli_support import parse_window
from propdesk.data.loaders.presets import load_bars
from propdesk.node.journaling import NodeJournal
from propdesk.node.recovery import recover_node
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.replay import RunOptions, RunSession
from propdesk.storage.db import create_engine_for
from propdesk.storage.recovery import load_recovery
from propdesk.storage.repositories import Repository
from tests.conftest import ES_1MIN, resolve_shared

START, END = "2025-10-01", "2025-10-08"


def test_risk_snapshots_and_eod_balances_are_journaled_and_restored(tmp_path: Path) -> None:
    es_path = resolve_shared(ES_1MIN)
    start_ns, end_ns = parse_window(START, END)
    bars = load_bars(es_path).between(start_ns, end_ns)
    options = RunOptions(
        replay=es_path,
        strategy="sma_cross",
        speed=None,
        start_ns=start_ns,
        end_ns=end_ns,
        risk=load_risk_config("topstep-50k-combine", None),
    )
    url = f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    session = RunSession(options, bars=bars, journal=NodeJournal(url))
    summary = asyncio.run(session.run(handle_sigint=False))
    n_fills = len(summary.fills)
    assert session.risk is not None and n_fills > 0
    state = session.risk.state
    days = list(state.eod_balances)
    assert len(days) >= 4  # a week of sessions: one end-of-day balance per closed trading day

    async def read() -> tuple[dict[str, int], object]:
        engine = create_engine_for(url)
        try:
            repo = Repository(engine)
            return await repo.counts(), await load_recovery(repo, options.account_id, end_ns)
        finally:
            await engine.dispose()

    counts, recovered = asyncio.run(read())
    assert counts["eod_balances"] == len(days)
    assert counts["account_snapshots"] == n_fills + len(days)  # one after every fill, one at every roll
    assert list(recovered.eod_balances) == days  # type: ignore[attr-defined]
    snap = recovered.account_snapshot  # type: ignore[attr-defined]
    assert snap is not None and list(snap.eod_balances) == days

    # a node built afresh on the same journal gets the end-of-day history and the trailing floor back
    fresh = RunSession(options, bars=bars)
    assert fresh.risk is not None and list(fresh.risk.state.eod_balances) == []

    async def restore() -> None:
        engine = create_engine_for(url)
        try:
            await recover_node(fresh.node, engine, now_ns=end_ns, risk=fresh.risk)
        finally:
            await engine.dispose()

    asyncio.run(restore())
    assert list(fresh.risk.state.eod_balances) == days
    assert fresh.risk.state.mll_floor == state.mll_floor
