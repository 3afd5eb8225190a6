"""A Topstep 50K Combine with four weeks of trading behind it, on the local gateway (``AccountConfig.history``):
``run --broker projectx`` (:class:`LiveSession`) and ``risk --broker projectx`` (:class:`ProjectXRiskSession`) derive
the MLL floor from the broker's trade history and trade ACTIVE at once, with no ``[account] mll_floor``
(propdesk.node.bootstrap, propdesk.risk.history_bootstrap). The journal keeps the derived end-of-day balances, so the
next start takes the floor from there. An account whose history does not explain its balance is refused in one line
naming the setting.

The history (start 50,000; each round trip is 1 ES bought at 6,000.00 and sold at 6,000 + pnl / 50 USD per point;
open fee 2.80, close fee 2.80, so net = pnl - 5.60), on five trading days spread over the four weeks before the session
(the days between them have no trades):

========  ==========  ==========  =========================
day       close pnl   net         end-of-day balance
========  ==========  ==========  =========================
T-18      +812.50     +806.90     50,806.90
T-14      +700.00     +694.40     51,501.30  (the high)
T-9       -900.00     -905.60     50,595.70
T-5       -300.00     -305.60     50,290.10
T-2       +400.00     +394.40     50,684.50
today     -100.00     -105.60     (day so far: balance 50,578.90)
========  ==========  ==========  =========================

MLL floor = min(50,000, 51,501.30 - 2,000) = **49,501.30**; the balance at today's open 50,684.50; now 50,578.90.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from propdesk.emulators.projectx import AccountConfig, PastTrade, create_app
from propdesk.emulators.projectx.wire import contract_info
from propdesk.model.calendar import default_calendar
from propdesk.model.price import Money
from propdesk.model.symbology import front_month
from propdesk.node.journaling import NodeJournal
from propdesk.risk.decisions import TradingState
from propdesk.risk.history_bootstrap import HistoryUnavailableError
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.live import LiveOptions, LiveSession, resolve_account
from propdesk.sessions.risk_daemon.session import ProjectXRiskOptions, ProjectXRiskSession
from tests.integration.test_live_projectx import Flip, FlipConfig, settings_for
from tests.kit.servers import free_port, serve_app
from tests.unit.emulators.projectx.conftest import make_config

pytestmark = pytest.mark.timeout(120)
CT = ZoneInfo("America/Chicago")
ACCT = 31001
SHORT_ACCT = 31002
DAYS_BACK = {18: "812.50", 14: "700.00", 9: "-900.00", 5: "-300.00", 2: "400.00"}
"""Trading days before today -> the closing fill's profitAndLoss (USD)."""


def usd(text: str) -> Money:
    return Money.of(Decimal(text))


def _at(d: date, hh: int, mm: int) -> datetime:
    return datetime.combine(d, dt_time(hh, mm), tzinfo=CT).astimezone(UTC)


def history(now: datetime) -> list[PastTrade]:
    """The module docstring's fills: a round trip at 10:00/10:30 CT on each past day, one at 08:00/08:15 today."""
    cal = default_calendar()
    today = cal.trading_date(int(now.timestamp()) * 1_000_000_000)
    contract = contract_info(front_month("ES", int(now.timestamp()) * 1_000_000_000)).id
    days: dict[int, date] = {}
    d = today
    for k in range(1, max(DAYS_BACK) + 1):
        d = cal.previous_trading_date(d)
        days[k] = d
    trips = [(_at(days[k], 10, 0), _at(days[k], 10, 30), pnl) for k, pnl in DAYS_BACK.items()]
    trips.append((_at(today, 8, 0), _at(today, 8, 15), "-100.00"))
    out: list[PastTrade] = []
    for t_open, t_close, pnl in trips:
        common = {"contract_id": contract, "size": 1, "fees": Decimal("2.80")}
        close = Decimal(6000) + Decimal(pnl) / 50
        out.append(PastTrade.model_validate({"time": t_open, "side": "buy", "price": 6000, "pnl": None, **common}))
        out.append(PastTrade.model_validate({"time": t_close, "side": "sell", "price": close, "pnl": pnl, **common}))
    return out


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The gateway of :func:`serve_weeks_gateway`."""
    yield from serve_weeks_gateway(monkeypatch)


def serve_weeks_gateway(monkeypatch: pytest.MonkeyPatch, *, speed: float = 60.0) -> Iterator[str]:
    """The gateway with the two accounts, the process's wall clock moved to the next Tuesday-Thursday 09:00 CT
    (the market open, as in ``test_live_projectx.gateway_in_session``), replaying at ``speed`` x real time; yields
    its host:port."""
    real = time.time_ns
    now = datetime.fromtimestamp(real() / 1e9, tz=CT)
    day = now.date() + timedelta(days=1)
    while day.weekday() not in (1, 2, 3):
        day += timedelta(days=1)
    target = datetime.combine(day, dt_time(9, 0), tzinfo=CT)
    offset = int(target.timestamp() * 1e9) - real()
    monkeypatch.setattr(time, "time_ns", lambda: real() + offset)
    past = history(target)
    accounts = [
        AccountConfig(id=ACCT, name="50KTC-WEEKS", balance=Decimal("50000"), history=past),
        # the same fills on an account whose balance they do not explain (it traded before the broker's window)
        AccountConfig(id=SHORT_ACCT, name="50KTC-OLDER", balance=Decimal("50250"), history=past),
    ]
    port = free_port()
    cfg = make_config(bind=f"127.0.0.1:{port}", autostart=True, speed=speed, ping_interval_s=0.5, accounts=accounts)
    yield from serve_app(create_app(cfg), port)


def _live(base: str, balance: Money, *, account: int = ACCT, journal: NodeJournal | None = None) -> LiveSession:
    options = LiveOptions(
        strategy="flip", duration_s=1.5, warmup_bars=3, risk=load_risk_config("topstep-50k-combine", None)
    )
    strategy = Flip(FlipConfig(symbol="ES", last_bar=0))  # never trades
    return LiveSession(
        options, settings_for(base), account_id=account, balance=balance, strategy=strategy, journal=journal
    )


@pytest.mark.asyncio
async def test_live_session_derives_the_floor_from_weeks_of_history_and_trades(gateway: str, tmp_path: Path) -> None:
    acct, name, balance = await resolve_account(settings_for(gateway), str(ACCT))
    assert (acct, name, balance) == (ACCT, "50KTC-WEEKS", usd("50578.90"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"
    session = _live(gateway, balance, journal=NodeJournal(url))
    summary = await asyncio.wait_for(session.run(handle_sigint=False), 60)

    assert session.bootstrap is not None
    h = session.bootstrap.history
    assert h.mll_peak == usd("51501.30")
    assert h.mll_floor == usd("49501.30")
    assert len(h.days) == 18  # every trading day from T-18 to T-1, the 13 without trades included
    assert [d.net_pnl for d in h.days if d.trades] == [
        usd(x) for x in ("806.90", "694.40", "-905.60", "-305.60", "394.40")
    ]
    assert h.days[-1].eod_balance == usd("50684.50")
    state = session.risk.state if session.risk is not None else None
    assert state is not None
    assert state.mll_floor == usd("49501.30")
    assert state.sod_balance == usd("50684.50")
    assert state.balance == usd("50578.90")
    assert state.day_realized_net == usd("-105.60") and state.trades_today == 2
    # today's round trip was counted fill by fill: one losing round trip, ended by the 08:15 CT sell
    close = history(datetime.fromtimestamp(time.time_ns() / 1e9, tz=CT))[-1]
    assert state.consecutive_losses == 1 and state.last_loss_ts_ns == int(close.time.timestamp()) * 1_000_000_000
    assert summary.trading_state == "ACTIVE"
    assert summary.to_json_dict()["mll_floor_usd"] == "49501.30"
    assert summary.mll_floor_source == "broker_history"
    assert all(c.new is not TradingState.REDUCING for c in session.state_changes)  # never reduce-only

    with sqlite3.connect(tmp_path / "journal.db") as db:
        eod = db.execute(
            "select trading_date, balance_cents from eod_balances where account_id = ? order by trading_date", (ACCT,)
        ).fetchall()
        audit = db.execute("select count(*) from risk_events where reasons like '%broker''s trade history%'").fetchone()
    assert len(eod) == 18 and max(c for _d, c in eod) == 5_150_130 and eod[-1][1] == 5_068_450
    assert audit == (1,)

    # the next start takes the floor from the journal: no bootstrap
    again = _live(gateway, balance, journal=NodeJournal(url))
    summary = await asyncio.wait_for(again.run(handle_sigint=False), 60)
    assert again.bootstrap is None and summary.mll_floor_source == "journal_or_config"
    assert again.risk is not None and again.risk.state.mll_floor == usd("49501.30")
    assert again.risk.state.balance == usd("50578.90") and again.risk.state.sod_balance == usd("50684.50")
    assert again.risk.state.trades_today == 2
    assert summary.trading_state == "ACTIVE"


@pytest.mark.asyncio
async def test_risk_daemon_derives_the_floor_and_goes_active(gateway: str) -> None:
    options = ProjectXRiskOptions(
        account_id=ACCT, config=load_risk_config("topstep-50k-combine", None), settings=settings_for(gateway)
    )
    session = ProjectXRiskSession(options)
    run = asyncio.create_task(session.run(handle_sigint=False))
    engine = session.daemon.engine
    deadline = time.monotonic() + 30
    while not (session.reconciles and engine.trading_state is TradingState.ACTIVE):
        assert not run.done(), run.result()
        assert time.monotonic() < deadline, f"not ACTIVE: {engine.guard.reasons if engine.running else None}"
        await asyncio.sleep(0.05)
    session.stop()
    status: dict[str, Any] = await asyncio.wait_for(run, 30)
    assert session.bootstrap is not None
    assert status["state"] == "ACTIVE"
    assert status["mll_floor_usd"] == "49501.30"
    assert status["balance_usd"] == "50578.90"
    assert status["trades_today"] == 2
    assert status["mll_floor_source"] == "broker_history"


@pytest.mark.asyncio
async def test_history_that_does_not_explain_the_balance_is_refused_in_one_line(gateway: str) -> None:
    _acct, _name, balance = await resolve_account(settings_for(gateway), str(SHORT_ACCT))
    session = _live(gateway, balance, account=SHORT_ACCT)
    with pytest.raises(HistoryUnavailableError) as exc:
        await asyncio.wait_for(session.run(handle_sigint=False), 60)
    text = str(exc.value)
    assert "[account] mll_floor" in text and "\n" not in text
    assert "50828.90" in text  # the broker's balance: 50,250 + 578.90 of history

    options = ProjectXRiskOptions(
        account_id=SHORT_ACCT, config=load_risk_config("topstep-50k-combine", None), settings=settings_for(gateway)
    )
    with pytest.raises(HistoryUnavailableError, match=r"\[account\] mll_floor"):
        await asyncio.wait_for(ProjectXRiskSession(options).run(handle_sigint=False), 60)


@pytest.mark.asyncio
async def test_with_a_configured_floor_the_state_takes_the_brokers_balance(gateway: str) -> None:
    cfg = replace(load_risk_config("topstep-50k-combine", None), mll_floor=usd("49250.00"))
    _acct, _name, balance = await resolve_account(settings_for(gateway), str(SHORT_ACCT))
    assert balance == usd("50828.90")
    options = LiveOptions(strategy="flip", duration_s=1.0, warmup_bars=0, risk=cfg)
    session = LiveSession(
        options, settings_for(gateway), account_id=SHORT_ACCT, balance=balance, strategy=Flip(FlipConfig(symbol="ES"))
    )
    summary = await asyncio.wait_for(session.run(handle_sigint=False), 60)
    assert session.bootstrap is None and summary.trading_state == "ACTIVE"
    assert session.risk is not None
    # today's fills were counted once: the broker's balance, with today's -105.60 in the day's figures
    assert session.risk.state.balance == usd("50828.90")
    assert session.risk.state.sod_balance == usd("50934.50")
    assert session.risk.state.day_realized_net == usd("-105.60")

    daemon = ProjectXRiskSession(ProjectXRiskOptions(account_id=SHORT_ACCT, config=cfg, settings=settings_for(gateway)))
    run = asyncio.create_task(daemon.run(handle_sigint=False))
    deadline = time.monotonic() + 30
    while not daemon.reconciles:
        assert not run.done(), run.result()
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    daemon.stop()
    status = await asyncio.wait_for(run, 30)
    assert status["state"] == "ACTIVE" and status["mll_floor_usd"] == "49250.00"
    assert status["balance_usd"] == "50828.90"
