"""``propdesk serve`` with a ProjectX account (the local ProjectX emulator, served by uvicorn on a free loopback port,
replaying real ES 1-minute bars at 600x) beside a simulated account replaying the ES file: the ProjectX account
connects, reconciles, warms its instances with history bars (one configured, one added at runtime) and trades
through the hubs; both accounts' events are on one gap-free journal sequence, each fill keyed by its own account's
venue session (ProjectX: empty; sim: the run)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from propdesk.config import ServeSettings
from propdesk.model.commands import AddStrategy
from propdesk.node.journaling import NodeJournal
from propdesk.sessions.serve import ServeSession, resolve_live_accounts
from tests.conftest import ES_1MIN, resolve_shared
from tests.integration.test_live_projectx import serve_gateway, settings_for
from tests.kit.serve import Pacer, es_window
from tests.unit.emulators.projectx.conftest import POSITION_ACCT

pytestmark = pytest.mark.timeout(180)
SIM_ACCT = 1


def mixed_settings() -> ServeSettings:
    data = resolve_shared(ES_1MIN)
    return ServeSettings.model_validate(
        {
            "data_dir": str(data.parent),
            "speed": 60,
            "accounts": [
                {"name": "sim", "account_id": SIM_ACCT, "data": data.name},
                {"name": "px", "broker": "projectx", "account": str(POSITION_ACCT), "risk": "", "symbol": "ES"},
            ],
            "strategies": [
                {"name": "sma-sim", "strategy": "sma_cross", "account": "sim", "params": {"fast": 2, "slow": 4}},
                {"name": "sma-px", "strategy": "sma_cross", "account": "px", "params": {"fast": 2, "slow": 3}},
            ],
        }
    )


@pytest.mark.asyncio
async def test_a_projectx_account_trades_beside_a_sim_account_on_one_journal(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    settings = mixed_settings()
    with serve_gateway() as base:
        px = settings_for(base)
        live = await resolve_live_accounts(settings, px)
        assert live["px"].account_id == POSITION_ACCT and live["px"].symbol.startswith("ES")
        pacer = Pacer()
        session = ServeSession(
            settings,
            journal=NodeJournal(f"sqlite:///{db}"),
            bars={"sim": es_window(90)},
            sleep=pacer.sleep,
            monotonic=pacer.monotonic,
            live=live,
            projectx=px,
        )
        task = asyncio.get_running_loop().create_task(session.run(handle_signals=False))
        account = session.lives[POSITION_ACCT]
        await pacer.until(lambda: session.reconciled[POSITION_ACCT], what="the ProjectX account reconciled")
        await pacer.until(lambda: len(account.fills) >= 2, what="the ProjectX instance traded", timeout_s=120)
        await pacer.until(lambda: len(session.service.fills(SIM_ACCT)) >= 2, what="the sim instance traded")
        views = {v.name: v for v in session.service.instances()}
        assert views["sma-px"].waiting == "" and views["sma-px"].account_id == POSITION_ACCT
        assert [s.tag for s in session.service.desk(POSITION_ACCT).strategies()] == ["sma-px"]
        assert account.warmup_bars > 0  # warmed with history bars before it traded

        # an instance added at runtime on the running contract feed: warmed up to the first bar not yet published
        before = account.warmup_bars
        added = AddStrategy(
            idempotency_key="add-px",
            account_id=POSITION_ACCT,
            name="sma-px-slow",
            strategy="sma_cross",
            symbol="ES",
            params=(("fast", 3), ("slow", 5)),
        )
        assert session.service.execute(added).accepted
        await pacer.until(lambda: account.warmup_bars > before, what="the added instance warmed")
        bars = account.bars
        await pacer.until(lambda: account.bars >= bars + 2, what="live bars after its warm-up")
        assert {s.tag for s in session.service.desk(POSITION_ACCT).strategies()} == {"sma-px", "sma-px-slow"}
        session.stop()
        await pacer.until(task.done, what="the service stopped")
        summary = await task
    assert summary.run_id is not None and not summary.completed
    by_name = {a.name: a for a in summary.accounts}
    assert by_name["px"].broker == "projectx" and by_name["px"].records > 0 and by_name["px"].reconciled
    px_trades = {f.trade_id for f in account.fills}

    with sqlite3.connect(db) as conn:
        seqs = [r[0] for r in conn.execute("select seq from events order by seq")]
        accounts = {r[0] for r in conn.execute("select distinct account_id from events")}
        fills = conn.execute("select account_id, trade_id, venue_session, run_id from fills").fetchall()
        cached = conn.execute("select count(*) from bars where symbol = ?", (live["px"].symbol,)).fetchone()[0]
    assert cached > 0  # the warm-up's history went through the journal's bar cache
    assert seqs == list(range(1, len(seqs) + 1))  # one gap-free sequence for both accounts
    assert {SIM_ACCT, POSITION_ACCT} <= accounts
    px_rows = [(t, v) for a, t, v, _r in fills if a == POSITION_ACCT]
    sim_rows = [(v, r) for a, _t, v, r in fills if a == SIM_ACCT]
    assert {t for t, _v in px_rows} == px_trades and {v for _t, v in px_rows} == {""}
    assert sim_rows and {v for v, _r in sim_rows} == {summary.run_id} and {r for _v, r in sim_rows} == {summary.run_id}
