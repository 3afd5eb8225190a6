"""The Desk facade on a backtest-style node built by NodeBuilder on the simulated broker (tests.kit.desk): order
commands with the pre-trade gate's verdict, idempotency, dry runs, the trading state, the strategy life cycle and
parameter updates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from propdesk.brokers.sim.broker import SimBroker
from propdesk.core.clock import SimClock
from propdesk.model.commands import (
    ADMIN_REQUIRED,
    IDEMPOTENCY_CONFLICT,
    INVALID,
    NOT_LIVE,
    VERSION_CONFLICT,
    CancelAllOrders,
    CancelOrder,
    ClosePosition,
    FlattenAccount,
    ModifyOrder,
    PauseStrategy,
    SetTradingState,
    StartStrategy,
    StopMode,
    StopStrategy,
    StrategyState,
    UpdateStrategyParams,
)
from propdesk.model.data import Bar
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.orders import OrderStatus, OrderType
from propdesk.model.price import Money, Price
from propdesk.node.builder import NodeBuilder, SessionKind
from propdesk.node.desk import Desk
from propdesk.risk.decisions import TradingState
from propdesk.strategies.base import Strategy, StrategyConfig
from tests.kit.desk import SYM, T0, TF, Env, buy, make_env

PERSONAL = """
[account]
start_balance = 50000

[rules.personal_daily_loss]
amount = 500
"""


class ScriptedConfig(StrategyConfig):
    """``bracket``: enter once with an 8-tick stop and a 16-tick target and hold; else buy when flat, close when
    long. ``period`` stands for an indicator period (not live); ``threshold`` is live."""

    bracket: bool = False
    period: int = Field(default=5, ge=1, description="bars (not live)")
    threshold: int = Field(default=1, ge=0, description="ticks", json_schema_extra={"live": True})


class Scripted(Strategy):
    name = "scripted"
    config_cls = ScriptedConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        self.bars = 0
        self.stops = 0
        self.changes: list[tuple[StrategyConfig, StrategyConfig]] = []

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        cfg = self.config
        assert isinstance(cfg, ScriptedConfig)
        if self.ctx.position_qty(self.symbol, self.tag) == 0:
            if any(o.is_open for o in self._open()):
                return
            if cfg.bracket:
                self.bracket(Side.BUY, stop_loss_ticks=8, take_profit_ticks=16)
            else:
                self.buy()
        elif not cfg.bracket and not any(o.is_open for o in self._open()):
            self.sell(self.ctx.position_qty(self.symbol, self.tag))

    def _open(self) -> list[Any]:
        node_ctx: Any = self.ctx
        return list(node_ctx._om.orders_for_tag(self.tag, open_only=True))

    def on_stop(self) -> None:
        self.stops += 1

    def on_params_changed(self, old: StrategyConfig, new: StrategyConfig) -> None:
        self.changes.append((old, new))


@pytest.fixture
def env() -> Env:
    return make_env()


# ------------------------------------------------------------------------------------------------ orders


def test_submit_is_accepted_at_once_and_the_fill_arrives_as_an_event(env: Env) -> None:
    result = env.desk.execute(buy("a1", 2))
    assert result.accepted and result.command == "SubmitOrder" and len(result.client_order_ids) == 1
    assert not [e for e in env.events if isinstance(e, OrderFilled)]  # the outcome is not a return value
    env.bar()
    fills = [e for e in env.events if isinstance(e, OrderFilled)]
    assert [(f.client_order_id, f.qty, f.price) for f in fills] == [(result.client_order_ids[0], 2, Price.of("6700"))]
    assert env.desk.fills() == fills
    [pos] = env.desk.positions()
    assert (pos.symbol, pos.signed_qty) == (SYM, 2)


def test_denied_by_r5_with_rule_id_and_contract_headroom(env: Env) -> None:
    env.desk.execute(buy("a1", 2))
    env.bar()
    result = env.desk.execute(buy("a2", 4))  # 2 held + 4 = 6 minis > the 50K Combine's 5
    assert not result.accepted
    assert result.verdict.rule_id == "R5" and result.verdict.reason.startswith("R5: ")
    assert result.verdict.headroom_qty == Decimal(3)
    assert result.verdict.headroom_usd is None
    assert env.om.order(result.client_order_ids[0]).status is OrderStatus.DENIED  # type: ignore[union-attr]
    assert env.net() == 2


def test_idempotent_replay_returns_the_first_result_and_a_reused_key_is_a_conflict(env: Env) -> None:
    first = env.desk.execute(buy("same", 1))
    again = env.desk.execute(buy("same", 1, ts_ns=T0 + 5))  # ts_ns is not content
    assert again.replayed and again.verdict == first.verdict and again.client_order_ids == first.client_order_ids
    assert len(env.om.orders()) == 1
    conflict = env.desk.execute(buy("same", 3))
    assert not conflict.accepted and conflict.verdict.rule_id == IDEMPOTENCY_CONFLICT
    assert len(env.om.orders()) == 1
    assert not env.desk.execute(buy(" ", 1)).accepted  # a key is required


def test_modify_cancel_and_bad_input(env: Env) -> None:
    placed = env.desk.execute(buy("l1", 1, order_type=OrderType.LIMIT, limit_price=Price.of("6690")))
    cid = placed.client_order_ids[0]
    moved = env.desk.execute(ModifyOrder(idempotency_key="m1", client_order_id=cid, limit_price=Price.of("6689.75")))
    assert moved.accepted
    assert env.om.order(cid).limit_price == Price.of("6689.75")  # type: ignore[union-attr]
    off_tick = env.desk.execute(ModifyOrder(idempotency_key="m2", client_order_id=cid, limit_price=Price.of("6689.1")))
    assert not off_tick.accepted and off_tick.verdict.rule_id == INVALID and "tick" in off_tick.verdict.reason
    unknown = env.desk.execute(CancelOrder(idempotency_key="c0", client_order_id="nope"))  # type: ignore[arg-type]
    assert unknown.verdict.rule_id == INVALID
    assert env.desk.execute(CancelOrder(idempotency_key="c1", client_order_id=cid)).accepted
    assert env.om.order(cid).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert env.desk.working_orders() == []


def test_cancel_all_and_working_orders_with_bracket_children(env: Env) -> None:
    env.desk.execute(buy("l1", 1, order_type=OrderType.LIMIT, limit_price=Price.of("6690")))
    entry = env.desk.execute(
        buy("b1", 1, order_type=OrderType.LIMIT, limit_price=Price.of("6680"), stop_loss_ticks=8, take_profit_ticks=16)
    )
    views = env.desk.working_orders()
    assert len(views) == 2
    [bracket] = [v for v in views if v.client_order_id == entry.client_order_ids[0]]
    children = {c.client_order_id: (c.side, c.qty) for c in bracket.children}
    if env.sim.capabilities.native_brackets:  # the children wait at the broker under their entry
        assert children == {f"{bracket.client_order_id}-sl": ("SELL", 1), f"{bracket.client_order_id}-tp": ("SELL", 1)}
    assert env.desk.execute(CancelAllOrders(idempotency_key="ca", symbol=SYM)).accepted
    assert env.desk.working_orders() == []


def test_close_position_part_and_flatten(env: Env) -> None:
    env.desk.execute(buy("a1", 3))
    env.bar()
    assert env.net() == 3
    assert env.desk.execute(ClosePosition(idempotency_key="cp", symbol=SYM, qty=1)).accepted
    env.bar()
    assert env.net() == 2
    env.desk.execute(buy("l1", 1, order_type=OrderType.LIMIT, limit_price=Price.of("6650")))
    assert env.desk.execute(FlattenAccount(idempotency_key="fl", reason="end of test")).accepted
    env.bar()
    assert env.net() == 0 and env.desk.positions() == [] and env.desk.working_orders() == []
    none = env.desk.execute(ClosePosition(idempotency_key="cp2", symbol=SYM))
    assert not none.accepted and none.verdict.rule_id == INVALID


def test_dry_run_gives_the_verdict_and_the_usd_at_risk_as_a_share_of_the_headroom(tmp_path: Path) -> None:
    toml = tmp_path / "risk.toml"
    toml.write_text(PERSONAL)
    env = make_env(risk_toml=toml)
    result = env.desk.execute(buy("d1", 2, stop_loss_ticks=8, dry_run=True))
    assert result.accepted and result.dry_run and result.client_order_ids == ()
    risk = result.risk
    assert risk is not None
    # 2 contracts x 8 ticks x $12.50 = $200; daily loss left $500 (personal), MLL headroom $2,000 (50K Combine)
    assert risk.at_risk_usd == Money.of("200")
    assert risk.daily_loss_headroom_usd == Money.of("500") and risk.daily_loss_share == Decimal("0.4")
    assert risk.mll_headroom_usd == Money.of("2000") and risk.mll_share == Decimal("0.1")
    denied = env.desk.dry_run(buy("d2", 6, stop_loss_ticks=8))
    assert not denied.accepted and denied.verdict.rule_id == "R5" and denied.verdict.headroom_qty == Decimal(5)
    assert env.om.orders() == []  # nothing was sent
    env.bar()
    assert env.desk.fills() == []
    # the key of a dry run executed through execute() is remembered like any other
    assert env.desk.execute(buy("d1", 2, stop_loss_ticks=8, dry_run=True)).replayed


def test_set_trading_state_only_towards_more_restrictive_without_admin(env: Env) -> None:
    risk = env.built.risk
    assert risk is not None
    assert env.desk.execute(SetTradingState(idempotency_key="s1", state="REDUCING", reason="news")).accepted
    assert risk.trading_state is TradingState.REDUCING
    opening = env.desk.execute(buy("a1"))
    assert not opening.accepted and opening.verdict.rule_id == "REDUCING"
    back = env.desk.execute(SetTradingState(idempotency_key="s2", state="ACTIVE"))
    assert not back.accepted and back.verdict.rule_id == ADMIN_REQUIRED
    assert risk.trading_state is TradingState.REDUCING
    assert env.desk.execute(SetTradingState(idempotency_key="s3", state="HALTED")).accepted
    assert risk.trading_state is TradingState.HALTED
    assert env.desk.execute(SetTradingState(idempotency_key="s4", state="ACTIVE", admin=True)).accepted
    assert risk.trading_state is TradingState.ACTIVE
    assert env.desk.execute(SetTradingState(idempotency_key="s5", state="CALM")).verdict.rule_id == INVALID
    [account] = env.desk.accounts()
    assert account.trading_state == "ACTIVE" and account.mll_floor_usd == Money.of("48000")


# ------------------------------------------------------------------------------------------------ strategies


def test_pause_holds_entries_and_keeps_exits() -> None:
    strategy = Scripted()
    env = make_env((strategy,))  # first bar: the strategy buys
    assert env.desk.execute(PauseStrategy(idempotency_key="p", strategy="scripted")).accepted
    env.bar()  # the buy fills; long: it sells (an exit: passes)
    env.bar()  # the sell fills; flat: it buys (an entry: held)
    orders = env.om.orders_for_tag("scripted")
    assert [(o.side, o.status) for o in orders] == [
        (Side.BUY, OrderStatus.FILLED),
        (Side.SELL, OrderStatus.FILLED),
        (Side.BUY, OrderStatus.DENIED),
    ]
    assert "paused" in orders[2].reason
    [view] = env.desk.strategies()
    assert view.state is StrategyState.PAUSED
    assert env.desk.execute(StartStrategy(idempotency_key="s", strategy="scripted")).accepted
    env.bar()
    assert env.om.orders_for_tag("scripted")[-1].status is OrderStatus.ACCEPTED


@pytest.mark.parametrize(
    ("mode", "position", "children_working"),
    [(StopMode.LEAVE, 1, 2), (StopMode.CANCEL, 1, 0), (StopMode.FLATTEN, 0, 0)],
)
def test_stop_with_each_mode(mode: StopMode, position: int, children_working: int) -> None:
    strategy = Scripted(ScriptedConfig(bracket=True))
    env = make_env((strategy,))  # bracket entry sent
    env.bar()  # entry filled, stop-loss and take-profit working
    assert env.net() == 1 and len(env.om.working_orders()) == 2
    bars = strategy.bars
    result = env.desk.execute(StopStrategy(idempotency_key="st", strategy="scripted", mode=mode))
    assert result.accepted and strategy.stops == 1
    env.bar()
    env.bar()
    assert strategy.bars == bars  # no more data
    assert env.net() == position
    assert len(env.om.working_orders()) == children_working
    [view] = env.desk.strategies()
    assert view.state is StrategyState.STOPPED
    assert [(e.state, e.mode) for e in env.events if hasattr(e, "mode")] == [(StrategyState.STOPPED, mode)]


def test_param_update_versions_live_fields_and_the_hook() -> None:
    strategy = Scripted()
    env = make_env((strategy,))
    desk = env.desk
    ok = desk.execute(
        UpdateStrategyParams(idempotency_key="u1", strategy="scripted", params=(("threshold", 3),), expected_version=1)
    )
    assert ok.accepted
    assert isinstance(strategy.config, ScriptedConfig) and strategy.config.threshold == 3
    [(old, new)] = strategy.changes
    assert isinstance(old, ScriptedConfig) and isinstance(new, ScriptedConfig)
    assert (old.threshold, new.threshold) == (1, 3)
    [view] = desk.strategies()
    assert view.version == 2 and view.params["threshold"] == 3 and "threshold" in view.live
    stale = desk.execute(
        UpdateStrategyParams(idempotency_key="u2", strategy="scripted", params=(("qty", 2),), expected_version=1)
    )
    assert not stale.accepted and stale.verdict.rule_id == VERSION_CONFLICT
    running = desk.execute(
        UpdateStrategyParams(idempotency_key="u3", strategy="scripted", params=(("period", 9),), expected_version=2)
    )
    assert not running.accepted and running.verdict.rule_id == NOT_LIVE and "period" in running.verdict.reason
    bad = desk.execute(
        UpdateStrategyParams(idempotency_key="u4", strategy="scripted", params=(("threshold", -1),), expected_version=2)
    )
    assert bad.verdict.rule_id == INVALID and "threshold" in bad.verdict.reason
    desk.execute(StopStrategy(idempotency_key="st", strategy="scripted"))
    stopped = desk.execute(
        UpdateStrategyParams(idempotency_key="u5", strategy="scripted", params=(("period", 9),), expected_version=2)
    )
    assert stopped.accepted and isinstance(strategy.config, ScriptedConfig) and strategy.config.period == 9
    assert desk.strategies()[0].version == 3
    tag = desk.execute(
        UpdateStrategyParams(idempotency_key="u6", strategy="scripted", params=(("tag", "x"),), expected_version=3)
    )
    assert tag.verdict.rule_id == NOT_LIVE


def test_risk_status_and_contracts(env: Env) -> None:
    env.desk.execute(buy("a1", 2))
    env.bar()
    rules = {r.rule_id: r for r in env.desk.risk_status()}
    assert (rules["R5"].value, rules["R5"].limit, rules["R5"].headroom) == (Decimal(2), Decimal(5), Decimal(3))
    assert rules["R1"].limit == Decimal("2000.00") and rules["R1"].state == "ALLOW"
    assert rules["R5"].last_decision.startswith("ALLOW")
    [spec] = env.desk.contracts()
    assert spec.tick_value == Money.of("12.50")


class TwoTimeframes(Scripted):
    name = "two_tf"

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        self.coarse = 0
        self.starts = 0
        self.subscribe_bars("2m", self._on_coarse)

    def _on_coarse(self, bar: Bar) -> None:
        self.coarse += 1

    def on_start(self) -> None:
        self.starts += 1


def test_a_stopped_strategy_gets_no_bars_of_any_timeframe_until_started_again() -> None:
    strategy = TwoTimeframes(ScriptedConfig(bracket=True))
    env = make_env((strategy,))
    for _ in range(4):
        env.bar()
    assert strategy.coarse >= 1
    seen = (strategy.bars, strategy.coarse)
    env.desk.execute(StopStrategy(idempotency_key="st", strategy="two_tf", mode=StopMode.FLATTEN))
    for _ in range(4):
        env.bar()
    assert (strategy.bars, strategy.coarse) == seen
    assert env.desk.execute(StartStrategy(idempotency_key="go", strategy="two_tf")).accepted
    assert strategy.starts == 2 and env.desk.strategies()[0].state is StrategyState.RUNNING
    for _ in range(4):
        env.bar()
    assert strategy.bars == seen[0] + 4 and strategy.coarse > seen[1]
    assert env.om.orders_for_tag("two_tf")[-1].status is not OrderStatus.DENIED  # it trades again


def test_cancel_of_a_done_order_is_refused(env: Env) -> None:
    placed = env.desk.execute(buy("a1"))
    env.bar()
    cid = placed.client_order_ids[0]
    refused = env.desk.execute(CancelOrder(idempotency_key="c1", client_order_id=cid))
    assert not refused.accepted and refused.verdict.rule_id == INVALID and "filled" in refused.verdict.reason


def test_daily_and_strategy_stats_and_the_audit_log(env: Env) -> None:
    env.desk.execute(buy("a1", 1))
    env.bar(6700.0)  # bought at 6700 (the bar's open)
    env.desk.execute(ClosePosition(idempotency_key="cp", symbol=SYM))
    env.bar(6702.0)  # sold at 6702: +8 ticks = +$100 (the simulated account charges no fee)
    [today] = env.desk.daily_stats()
    assert not today.complete and today.net_pnl == Money.of("100") and today.balance == Money.of("50100")
    stats = env.desk.strategy_stats()
    assert stats["desk"].realized_pnl == Money.of("100") and stats["desk"].fill_count == 2  # the buy and the close
    denied = env.desk.execute(buy("a2", 6))
    assert not denied.accepted
    [last] = env.desk.audit(point="pre", limit=1)
    assert last.action == "DENY" and last.reasons[0].startswith("R5: ")
    assert len(env.desk.audit(point="pre")) == 2  # the buy passed, the 6 lots did not


def test_pnl_all_positions_and_order_lookup(env: Env) -> None:
    result = env.desk.execute(buy("a1", 1))
    env.bar(6700.0)  # bought at 6700
    env.desk.execute(ClosePosition(idempotency_key="cp", symbol=SYM))
    env.bar(6702.0)  # sold at 6702: +$100
    assert env.desk.positions() == []  # flat: no open position
    [flat] = env.desk.all_positions()  # but the flat one keeps its realized PnL
    assert (flat.symbol, flat.signed_qty, flat.realized_pnl, flat.unrealized_pnl) == (SYM, 0, Money.of("100"), None)
    [pnl] = env.desk.pnl()
    assert (pnl.realized_usd, pnl.fees_usd, pnl.unrealized_usd) == (Money.of("100"), Money(0), Money(0))
    assert (pnl.balance_usd, pnl.equity_usd, pnl.starting_balance_usd) == (
        Money.of("50100"),
        Money.of("50100"),
        Money.of("50000"),
    )
    assert pnl.day_net_usd == Money.of("100") and pnl.realized_net_usd == Money.of("100")
    env.desk.execute(buy("a2", 1))
    env.bar(6704.0)  # long 1 at 6704 (the bar's open), marked at 6704
    env.bar(6706.0)  # marked at the close 6706: +8 ticks open
    [pnl] = env.desk.pnl()
    assert pnl.unrealized_usd == Money.of("100") and pnl.equity_usd == pnl.balance_usd + Money.of("100")
    view = env.desk.order(result.client_order_ids[0])
    assert view is not None and (view.side, view.qty, view.filled_qty, view.status) == ("BUY", 1, 1, "filled")
    assert env.desk.order(ClientOrderId("pd-unknown-1")) is None


def test_trading_day_and_risk_outcomes(env: Env) -> None:
    day = env.desk.trading_day()
    assert day is not None
    assert day.trading_date.isoformat() == "2025-10-15" and day.preset == "topstep-50k-combine"
    roll = int(datetime(2025, 10, 15, 22, 0, tzinfo=UTC).timestamp()) * 10**9  # 17:00 CT
    assert day.next_reset_ns == roll
    assert day.next_flat_ns is not None and day.next_flat_ns < roll  # R11's flat time comes before the roll
    assert day.conditions == {}
    outcomes = env.desk.risk_outcomes()
    assert outcomes is not None and outcomes is env.built.risk.outcomes  # type: ignore[union-attr]


def test_without_a_risk_engine_the_risk_queries_are_empty() -> None:
    clock = SimClock(T0)
    sim = SimBroker(clock, account_id=1, starting_balance=Money.of(50000))
    built = NodeBuilder(kind=SessionKind.BACKTEST, clock=clock, broker=sim, symbol=SYM, bar_timeframe=TF).build()
    desk = Desk(built)
    assert desk.trading_day() is None and desk.risk_outcomes() is None and desk.risk_status() == []
    [pnl] = desk.pnl()
    assert pnl.balance_usd == pnl.starting_balance_usd == Money.of("50000")
