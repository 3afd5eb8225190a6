"""RiskEngine wiring on a SimClock with the SimBroker and a real TradingNode: breach -> flatten + lockout until the
next 17:00 CT, the daily reset at the session boundary (once), the flat time at 15:05 CT."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from propdesk.brokers.sim import SimBroker, SimConfig
from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.core.errors import ConfigError
from propdesk.model.data import Bar, Timeframe
from propdesk.model.enums import Side
from propdesk.model.events import OrderDenied
from propdesk.model.identifiers import AccountId
from propdesk.model.price import Money
from propdesk.node import NodeConfig, TradingNode
from propdesk.risk.calendar import SessionRolled
from propdesk.risk.decisions import TradingState
from propdesk.risk.engine import RiskEngine
from propdesk.risk.events import AccountFlattened, LockoutSet, RuleBreached
from propdesk.risk.presets import load_risk_config

CT = ZoneInfo("America/Chicago")
SYM = "ESZ5"
TF = Timeframe.parse("1m")
M = 60_000_000_000


def ct_ns(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=CT).timestamp()) * 1_000_000_000


class Rig:
    """A node with the risk engine on a simulated clock and exchange; bars are played as a backtest plays them."""

    def __init__(self, tmp_path: Path, toml: str, start_ns: int) -> None:
        path = tmp_path / "risk.toml"
        path.write_text(toml, encoding="utf-8")
        self.config = load_risk_config(None, path)
        self.clock = SimClock(start_ns)
        self.bus = MessageBus(timing=False)
        self.sim = SimBroker(
            self.clock,
            account_id=AccountId(1),
            config=SimConfig(flatten_fill="last-price", calendar_check="off"),
            starting_balance=Money.of(50_000),
        )
        self.engine = RiskEngine(self.config, new_account=True, quote_stale_s=None, roots=("ES",))
        self.node = TradingNode(
            clock=self.clock,
            broker=self.sim,
            config=NodeConfig(bus_timing=False),
            bus=self.bus,
            risk=self.engine.attach,
        )
        self.events: list[object] = []
        for topic in ("events.risk.**", "events.session.**"):
            self.bus.subscribe(topic, self.events.append, -300)
        self.engine.start()
        self.node.start()
        self.last = 6000.0

    def play(self, close: float, minutes: int = 1) -> None:
        """Play ``minutes`` one-minute bars ending at ``close`` (linear path from the last close)."""
        for k in range(1, minutes + 1):
            px = self.last + (close - self.last) * k / minutes
            now = self.clock.timestamp_ns()
            b = Bar(SYM, TF, px, px + 0.25, px - 0.25, px, 1000, now, now + M)
            self.clock.advance_to(now + M)
            self.sim.process_bar(b)
            self.node.publish_bar(b)
        self.last = close

    def until(self, ts_ns: int) -> None:
        """Play flat bars at the last close up to ``ts_ns``."""
        while self.clock.timestamp_ns() < ts_ns:
            self.play(self.last)

    def buy(self, qty: int = 1) -> None:
        om = self.node.orders
        om.submit(om.market(SYM, Side.BUY, qty, "test"))

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


PERSONAL = """
[account]
start_balance = 50000

[rules.personal_daily_loss]
amount = 500
"""


def test_losing_trade_breaches_personal_daily_loss_flattens_and_locks_out_until_17_ct(tmp_path: Path) -> None:
    rig = Rig(tmp_path, PERSONAL, ct_ns(2025, 10, 14, 9, 0))  # a Tuesday, 09:00 CT
    rig.play(6000.0)
    rig.buy()
    rig.play(6000.0)  # fills at this bar's open
    assert rig.node.positions.net_qty(rig.node.account_id, SYM) == 1
    assert rig.engine.trading_state is TradingState.ACTIVE
    rig.play(5990.0, minutes=4)  # -10 points = -$500: day net <= -(500 - 100 buffer)
    assert rig.node.positions.net_qty(rig.node.account_id, SYM) == 0  # flattened at once (last price)
    assert rig.engine.trading_state is TradingState.HALTED
    breaches = rig.of(RuleBreached)
    assert [b.rule_id for b in breaches] == ["R3"]
    (lock,) = rig.of(LockoutSet)
    assert lock.lockout.expires_at_ns == ct_ns(2025, 10, 14, 17, 0)
    assert len(rig.of(AccountFlattened)) == 1
    assert rig.engine.state.day_realized_net.cents < -40_000

    denied: list[OrderDenied] = []
    rig.bus.subscribe("events.order.denied", denied.append)
    rig.buy()  # the gate denies while HALTED
    assert len(denied) == 1 and "HALTED" in denied[0].reason

    status = rig.engine.status()
    assert status["state"] == "HALTED"
    assert [lo["rule_id"] for lo in status["lockouts"]] == ["R3"]
    r3 = next(r for r in status["rules"] if r["rule_id"] == "R3")
    assert r3["used_fraction"] is not None and r3["used_fraction"] >= 0.8
    assert status["next_reset_ns"] == ct_ns(2025, 10, 14, 17, 0)

    rig.until(ct_ns(2025, 10, 14, 17, 1))  # the lockout lifts at the session boundary
    assert rig.engine.trading_state is TradingState.ACTIVE
    assert rig.engine.state.day_realized_net.cents == 0


def test_daily_reset_fires_once_at_the_session_boundary(tmp_path: Path) -> None:
    rig = Rig(tmp_path, PERSONAL, ct_ns(2025, 10, 14, 16, 50))
    rig.until(ct_ns(2025, 10, 14, 17, 30))
    rolls = rig.of(SessionRolled)
    assert len(rolls) == 1
    assert rolls[0].ts_ns == ct_ns(2025, 10, 14, 17, 0)
    assert str(rolls[0].trading_date) == "2025-10-15"
    assert str(rig.engine.state.trading_date) == "2025-10-15"
    (close,) = rig.engine.day_closes
    assert str(close.trading_date) == "2025-10-14" and close.complete
    assert rig.engine.status()["next_reset_ns"] == ct_ns(2025, 10, 15, 17, 0)


def test_flat_time_flattens_at_15_05_ct_and_locks_out_until_the_next_session(tmp_path: Path) -> None:
    rig = Rig(tmp_path, PERSONAL, ct_ns(2025, 10, 14, 14, 50))
    rig.play(6000.0)
    rig.buy()
    rig.play(6000.0)
    assert rig.node.positions.net_qty(rig.node.account_id, SYM) == 1
    rig.until(ct_ns(2025, 10, 14, 15, 4))
    assert rig.node.positions.net_qty(rig.node.account_id, SYM) == 1
    rig.until(ct_ns(2025, 10, 14, 15, 5))
    assert rig.node.positions.net_qty(rig.node.account_id, SYM) == 0
    (breach,) = rig.of(RuleBreached)
    assert breach.rule_id == "R11" and breach.ts_ns == ct_ns(2025, 10, 14, 15, 5)
    (lock,) = rig.of(LockoutSet)
    assert lock.lockout.expires_at_ns == ct_ns(2025, 10, 14, 17, 0)
    assert rig.engine.trading_state is TradingState.HALTED


def test_gate_fails_closed_before_start_and_engine_attaches_once(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(PERSONAL, encoding="utf-8")
    engine = RiskEngine(load_risk_config(None, path), new_account=True)
    with pytest.raises(ConfigError):
        engine.start()
    clock = SimClock(ct_ns(2025, 10, 14, 9, 0))
    sim = SimBroker(clock, account_id=AccountId(1), config=SimConfig(), starting_balance=Money.of(50_000))
    node = TradingNode(clock=clock, broker=sim, config=NodeConfig(bus_timing=False), risk=engine.attach)
    assert engine.trading_state is TradingState.HALTED  # no guard yet: nothing passes
    denied: list[OrderDenied] = []
    node.bus.subscribe("events.order.denied", denied.append)
    node.orders.submit(node.orders.market(SYM, Side.BUY, 1, "test"))
    assert len(denied) == 1
    with pytest.raises(ConfigError):
        engine.attach(node)
