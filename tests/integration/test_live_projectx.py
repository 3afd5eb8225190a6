"""``LiveSession`` (``propdesk run --broker projectx``) end to end against ``propdesk gateway`` served by uvicorn on a
free loopback port, replaying real ES 1-minute bars at 600x: warm-up from ``History/retrieveBars``, trades
aggregated into bars, orders and fills through the hubs; afterwards the session's fills, orders and positions equal
the gateway's. A reconnect under faults (messages dropped, hubs dropped, mid-fills) loses nothing, counts nothing
twice, and the risk guard goes REDUCING and back to ACTIVE after the reconcile. The CLI runs too (subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import Field

from propdesk.brokers.projectx import ProjectXSettings
from propdesk.core.errors import ConfigError
from propdesk.data.aggregation import aggregate_bars
from propdesk.emulators.projectx import create_app
from propdesk.model.data import Bar, BarSeries, Timeframe
from propdesk.model.orders import OrderStatus
from propdesk.model.positions import StrategyPositionChange
from propdesk.risk.decisions import TradingState
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.live import LiveOptions, LiveSession, projectx_settings, resolve_account
from propdesk.strategies.base import Strategy, StrategyConfig
from tests.kit.servers import free_port, serve_app
from tests.unit.emulators.projectx.conftest import ADMIN, POSITION_ACCT, USER, make_config

pytestmark = pytest.mark.timeout(180)
SPEED = 600.0
"""Replay speed of the gateway: one 1-minute bar every 0.1 s of wall time."""
CREDS = {"PROPDESK_PROJECTX_USERNAME": USER["userName"], "PROPDESK_PROJECTX_API_KEY": USER["apiKey"]}
ROOT = Path(__file__).resolve().parents[2]
CT = ZoneInfo("America/Chicago")


class FlipConfig(StrategyConfig):
    every: int = Field(default=2, ge=1)
    last_bar: int = 10_000
    warmup: int = 0


class Flip(Strategy):
    """Test strategy: every ``every`` live bars, buy 1 when flat, else close; no trade after live bar ``last_bar``
    (so no order is still in flight when the session stops). The first ``warmup`` bars are the history. It never acts
    while its last order is in flight: an action due then waits for the bar after its fill (at 600x a bar is 0.1 s of
    wall time, so a loaded machine can deliver a bar before the previous fill)."""

    name: ClassVar[str] = "flip"
    config_cls: ClassVar[type[StrategyConfig]] = FlipConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        self.seen = 0
        self.in_flight = False
        self.due = False

    def on_bar(self, bar: Bar) -> None:
        self.seen += 1
        cfg = self.config
        assert isinstance(cfg, FlipConfig)
        live = self.seen - cfg.warmup
        if live > 0 and live % cfg.every == 0 and live <= cfg.last_bar:
            self.due = True
        if not self.due or self.in_flight:
            return
        self.due = False
        self.in_flight = True
        if self.position == 0:
            self.buy()
        else:
            self.close()

    def on_position_changed(self, change: StrategyPositionChange) -> None:
        self.in_flight = False


def _serve() -> Iterator[str]:
    """A gateway (fresh accounts, wall-clock ids) served by uvicorn on a free loopback port: yields ``host:port``."""
    port = free_port()
    yield from serve_app(
        create_app(make_config(bind=f"127.0.0.1:{port}", autostart=True, speed=SPEED, ping_interval_s=0.5)), port
    )


serve_gateway = contextlib.contextmanager(_serve)
"""``with serve_gateway() as base:`` a gateway for the block (:func:`_serve`)."""


@pytest.fixture
def gateway() -> Iterator[str]:
    """A fresh gateway (fresh accounts) replaying at 600x from now."""
    yield from _serve()


@pytest.fixture
def gateway_in_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """As :func:`gateway`, with the process's wall clock (``time.time_ns``: the gateway, the broker, the LiveClock
    and the risk engine alike) moved to the next Tuesday-Thursday 09:00 CT, so the firm's session rules (R11 flat
    time) see an open market whatever day the test runs on."""
    real = time.time_ns
    now = datetime.fromtimestamp(real() / 1e9, tz=CT)
    day = now.date() + timedelta(days=1)
    while day.weekday() not in (1, 2, 3):
        day += timedelta(days=1)
    target = datetime.combine(day, dt_time(9, 0), tzinfo=CT)
    offset = int(target.timestamp() * 1e9) - real()
    monkeypatch.setattr(time, "time_ns", lambda: real() + offset)
    yield from _serve()


def settings_for(base: str) -> ProjectXSettings:
    return projectx_settings(
        api_base=f"http://{base}",
        user_hub=f"http://{base}/hubs/user",
        market_hub=f"http://{base}/hubs/market",
        config_path=None,
        environ=CREDS,
        reconnect_base_s=0.1,
        reconnect_max_s=0.5,
        confirm_timeout_s=0.3,
        hub_connect_timeout_s=20,
    )


class GatewayApi:
    """The gateway's own view, through REST and the admin API."""

    def __init__(self, base: str) -> None:
        self.base = f"http://{base}"
        self.token: str | None = None

    async def call(self, path: str, body: dict[str, Any]) -> Any:
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            if self.token is None:
                r = await http.post("/api/Auth/loginKey", json=USER)
                self.token = r.json()["token"]
            r = await http.post(f"/api/{path}", json=body, headers={"Authorization": f"Bearer {self.token}"})
            assert r.status_code == 200, r.text
            data = r.json()
            assert data["success"], data
            return data

    async def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            r = await http.post(f"/_propdesk/{path}", json=body or {}, headers=ADMIN)
            assert r.status_code == 200, r.text
            return r.json()

    async def trades(self, acct: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await self.call("Trade/search", {"accountId": acct}))["trades"]
        return [t for t in rows if not t["voided"]]

    async def orders(self, acct: int) -> list[dict[str, Any]]:
        body = {"accountId": acct, "startTimestamp": "2000-01-01T00:00:00Z"}
        rows: list[dict[str, Any]] = (await self.call("Order/search", body))["orders"]
        return rows

    async def positions(self, acct: int) -> dict[str, int]:
        rows = (await self.call("Position/searchOpen", {"accountId": acct}))["positions"]
        return {p["contractDisplayName"]: p["size"] * (1 if p["type"] == 1 else -1) for p in rows}


async def until(pred: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def assert_matches_gateway(session: LiveSession, api: GatewayApi) -> None:
    """Local fills, orders and positions equal the gateway's (by id)."""
    acct = int(session.account_id)
    gw_trades = await api.trades(acct)
    local_ids = [f.trade_id for f in session.fills]
    assert len(local_ids) == len(set(local_ids)), "a fill was counted twice"
    assert sorted(local_ids) == sorted(str(t["id"]) for t in gw_trades)
    by_trade = {f.trade_id: f for f in session.fills}
    for t in gw_trades:
        f = by_trade[str(t["id"])]
        assert f.qty == t["size"] and float(f.price.as_decimal()) == pytest.approx(t["price"])
    status_of = {2: OrderStatus.FILLED, 3: OrderStatus.CANCELED, 5: OrderStatus.REJECTED, 4: OrderStatus.EXPIRED}
    for row in await api.orders(acct):
        cid = row["customTag"] or f"px-close-{row['id']}"  # Position/closeContract orders carry no tag
        order = session.node.orders.order(cid)
        assert order is not None, f"gateway order {row['id']} ({cid}) unknown locally"
        assert order.broker_order_id is None or int(order.broker_order_id) == row["id"]
        if row["status"] in status_of:
            assert order.status is status_of[row["status"]], (row, order.status)
            assert order.filled_qty == row["fillVolume"]
        else:
            assert not order.is_done
    local_pos = {p.symbol: p.signed_qty for p in session.node.positions.open_positions(session.account_id)}
    assert local_pos == await api.positions(acct)


@pytest.mark.asyncio
async def test_settings_need_env_credentials_and_never_echo_them() -> None:
    with pytest.raises(ConfigError, match="PROPDESK_PROJECTX_API_KEY") as exc:
        projectx_settings(environ={"PROPDESK_PROJECTX_USERNAME": "someone"}, config_path=None)
    assert "someone" not in str(exc.value)
    s = projectx_settings(environ={**CREDS, "PROPDESK_PROJECTX_API_KEY": "s3cret-key"}, config_path=None)
    assert s.api_base == "https://api.topstepx.com"  # TopstepX defaults
    assert "s3cret-key" not in repr(s) and "s3cret-key" not in str(s)


@pytest.mark.asyncio
async def test_live_session_trades_and_matches_gateway(gateway: str) -> None:
    api = GatewayApi(gateway)
    settings = settings_for(gateway)
    acct, name, balance = await resolve_account(settings, str(POSITION_ACCT))
    assert (acct, name) == (POSITION_ACCT, "PRAC-1")
    strategy = Flip(FlipConfig(symbol="ES", every=2, last_bar=8, warmup=50))
    # the strategy's last order goes out at bar 8; the 22 bars after it leave its fill time to arrive on a busy machine
    options = LiveOptions(strategy="flip", max_bars=30, warmup_bars=50)
    session = LiveSession(options, settings, account_id=acct, account_name=name, balance=balance, strategy=strategy)
    summary = await asyncio.wait_for(session.run(handle_sigint=False), 90)

    assert summary.completed and not summary.interrupted
    assert summary.bars == 30 and strategy.seen == 50 + 30
    assert summary.symbol.startswith("ES") and summary.warmup_bars == 50
    assert summary.first_ts_ns is not None and summary.last_ts_ns is not None
    assert summary.last_ts_ns - summary.first_ts_ns == 29 * 60 * 10**9  # consecutive minute bars, none skipped
    assert len(summary.fills) == 4  # bars 2, 4, 6, 8: buy, close, buy, close
    assert summary.open_qty == 0 and len(summary.trips) == 2
    await asyncio.sleep(0.3)
    await assert_matches_gateway(session, api)


@pytest.mark.asyncio
async def test_reconnect_under_faults_loses_nothing_and_risk_recovers(gateway_in_session: str) -> None:
    gateway = gateway_in_session
    api = GatewayApi(gateway)
    settings = settings_for(gateway)
    risk = load_risk_config("topstep-50k-combine", None)
    strategy = Flip(FlipConfig(symbol="ES", every=1, last_bar=45, warmup=10))
    options = LiveOptions(strategy="flip", max_bars=50, warmup_bars=10, risk=risk, risk_new_account=True)
    session = LiveSession(options, settings, account_id=POSITION_ACCT, account_name="PRAC-1", strategy=strategy)
    run = asyncio.create_task(session.run(handle_sigint=False))
    try:
        await until(lambda: len(session.fills) >= 4, 60)
        assert session.trading_state is TradingState.ACTIVE
        # while orders keep filling: the user hub loses its messages (order and fill events vanish), then, once the
        # switch is cleared, every hub connection drops: the reconnect's reconcile must recover what was lost
        await api.admin("faults/hub/messages", {"hub": "user", "drop_all": True})
        await asyncio.sleep(0.35)
        await api.admin("faults/clear")
        await api.admin("faults/hub/drop", {"hub": "all"})
        await until(lambda: session.disconnects >= 1 and session.reconciles >= 2, 30)
        summary = await asyncio.wait_for(run, 90)
    finally:
        if not run.done():
            session.stop()
            await asyncio.wait_for(run, 30)

    assert summary.completed and summary.disconnects >= 1
    await asyncio.sleep(0.3)
    await assert_matches_gateway(session, api)
    assert any(f.reconciled for f in session.fills), "no fill was recovered by a reconcile"
    changes = [(c.old, c.new) for c in session.state_changes]
    assert (TradingState.ACTIVE, TradingState.REDUCING) in changes
    reducing_at = changes.index((TradingState.ACTIVE, TradingState.REDUCING))
    assert (TradingState.REDUCING, TradingState.ACTIVE) in changes[reducing_at:]
    # the reconcile lifted the disconnect's REDUCING; the account ends ACTIVE unless a loss rule locked it later (the
    # gateway replays real prices shifted to the time of day the test runs, so the flipping strategy's PnL varies)
    if summary.trading_state != "ACTIVE":
        last = session.state_changes[-1]
        assert last.new is TradingState.HALTED and summary.trading_state == "HALTED"
        assert any(r.startswith("lockout R") for r in last.reasons), last.reasons
        assert not any("disconnect" in r for r in last.reasons), last.reasons
    assert all(r.ok for r in session.reconcile_reports[-1:])


def test_cli_run_broker_projectx_completes_a_replay(gateway: str, tmp_path: Path) -> None:
    base = f"http://{gateway}"
    env = {
        **os.environ,
        **CREDS,
        "PROPDESK_CONFIG": str(tmp_path / "absent.toml"),
        "PROPDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'journal.db'}",
        "NO_COLOR": "1",
    }
    cfg = tmp_path / "propdesk.toml"
    cfg.write_text(f'[projectx]\napi_base = "{base}"\nuser_hub_url = "{base}/hubs/user"\n', encoding="utf-8")
    cmd = [
        sys.executable, "-m", "propdesk", "run", "--broker", "projectx", "--account", "PRAC-1",
        "--strategy", "sma_cross", "--param", "fast=2", "--param", "slow=4", "--param", "symbol=ES",
        "--config", str(cfg), "--market-hub", f"{base}/hubs/market", "--bars", "8", "--json", "--no-console",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["completed"] and out["bars"] == 8 and out["symbol"].startswith("ES") and out["warmup_bars"] > 4
    assert CREDS["PROPDESK_PROJECTX_API_KEY"] not in proc.stdout + proc.stderr

    # the history went through the journal's bar cache

    with sqlite3.connect(tmp_path / "journal.db") as db:
        (n,) = db.execute("select count(*) from bars").fetchone()
    assert n >= out["warmup_bars"]

    missing = {k: v for k, v in env.items() if k != "PROPDESK_PROJECTX_API_KEY"}
    proc = subprocess.run(cmd, env=missing, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 2 and "PROPDESK_PROJECTX_API_KEY" in proc.stderr


class TwoTimeframes(Strategy):
    """Test strategy: trades nothing; records its own 1-minute live bars and the 3-minute bars it registers."""

    name: ClassVar[str] = "two_timeframes"

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        self.minutes: list[Bar] = []
        self.threes: list[Bar] = []

    def on_start(self) -> None:
        self.subscribe_bars("3m", self.threes.append)

    def on_bar(self, bar: Bar) -> None:
        self.minutes.append(bar)


@pytest.mark.asyncio
async def test_live_registered_timeframe_is_built_from_the_live_bars(gateway: str) -> None:
    """A strategy on 1-minute bars that registers 3-minute bars gets them live, each built from the live 1-minute
    bars it spans (the node's bar feeds) as the vectorised aggregator builds them."""
    settings = settings_for(gateway)
    acct, name, balance = await resolve_account(settings, str(POSITION_ACCT))
    strategy = TwoTimeframes(StrategyConfig(symbol="ES"))
    options = LiveOptions(strategy="two_timeframes", max_bars=12, warmup_bars=0)
    session = LiveSession(options, settings, account_id=acct, account_name=name, balance=balance, strategy=strategy)
    summary = await asyncio.wait_for(session.run(handle_sigint=False), 90)
    assert summary.completed and len(strategy.minutes) == 12
    assert session.timeframe == Timeframe(1, "m")
    live = _series(strategy.minutes)
    expected = [b for b in aggregate_bars(live, Timeframe(3, "m")) if b.ts_close_ns <= live.ts_close_ns[-1]]
    assert len(strategy.threes) >= 3
    got = [(b.ts_open_ns, b.ts_close_ns, b.open, b.high, b.low, b.close, b.volume) for b in strategy.threes]
    assert got == [(b.ts_open_ns, b.ts_close_ns, b.open, b.high, b.low, b.close, b.volume) for b in expected]


def _series(bars: list[Bar]) -> BarSeries:
    b0 = bars[0]
    return BarSeries(
        b0.symbol,
        b0.timeframe,
        [b.ts_open_ns for b in bars],
        [b.ts_close_ns for b in bars],
        [b.open for b in bars],
        [b.high for b in bars],
        [b.low for b in bars],
        [b.close for b in bars],
        [b.volume for b in bars],
    )
