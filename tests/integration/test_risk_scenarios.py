"""Scenario tests of the risk engine, rule by rule, on a SimClock with the SimBroker and a real TradingNode (issue 4,
"Tests"): the fills that breach a rule (strategy and manual fills, partial fills, reversals through zero, micro and
mini mixes), the enforcement that reaches the broker, the trading state, the lockout and its exact expiry (DST days,
Thanksgiving, the Black Friday early close) and the lockout lifting at that time; a breach while disconnected.

Expected expiry times are written by hand in UTC (17:00 CT is 22:00 UTC in CDT, 23:00 UTC in CST), so the DST
handling is checked, not recomputed. Point values: ES $50, MES $5, NQ $20 (risk-rules.md section 3.1).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from propdesk.brokers.sim import SimConfig
from propdesk.model.enums import Side
from propdesk.model.orders import Order, OrderStatus, OrderType
from propdesk.model.price import Money, Price
from propdesk.node.journaling import NodeJournal
from propdesk.risk.audit import RingAuditLog
from propdesk.risk.decisions import Action, TradingState
from propdesk.risk.events import AccountFlattened, LockoutExpired, LockoutSet, RuleBreached, RuleWarned
from propdesk.risk.rules.hedging import HedgeLeg
from propdesk.storage.journal import BackpressureLevel
from tests.integration.risk_rig import SEC, RiskRig, ct_ns, utc_ns

ES, MES, NQ = "ESZ5", "MESZ5", "NQZ5"
COMBINE = 'preset = "topstep-50k-combine"\n'
PDLL_500 = "[rules.personal_daily_loss]\namount = 500\n"


def opened(rig: RiskRig, symbol: str, qty: int, px: float = 6000.0) -> None:
    """Print ``px``, buy ``qty`` through the strategy path and fill it at the next print."""
    rig.tick(symbol, px)
    rig.buy(symbol, qty)
    rig.tick(symbol, px)
    assert rig.qty(symbol) == qty


def assert_flattened_and_locked(rig: RiskRig, rule_id: str, action: Action, expires_ns: int | None, since: int) -> None:
    """The breach decision, the enforcement commands, flat, HALTED, and the lockout's exact expiry."""
    breaches = [b for b in rig.of(RuleBreached) if b.decision.action >= Action.FLATTEN]
    assert [(b.rule_id, b.decision.action) for b in breaches] == [(rule_id, action)]
    sent = rig.commands_since(since)
    assert "cancel_all" in sent
    if "close_position" in sent:  # cancel every working order first, then close
        assert sent.index("cancel_all") < sent.index("close_position")
    assert rig.is_flat()
    assert rig.state() is TradingState.HALTED
    (lock,) = rig.of(LockoutSet)
    assert lock.lockout.rule_id == rule_id
    assert lock.lockout.expires_at_ns == expires_ns
    assert [lo.rule_id for lo in rig.store.load_active(lock.lockout.account, rig.clock.timestamp_ns())] == [rule_id]
    assert len(rig.of(AccountFlattened)) == 1


def status(order: Order) -> OrderStatus:
    """The order's status now (a call, so a type checker does not narrow it across the steps of a test)."""
    return order.status


def closes(rig: RiskRig, since: int) -> list[dict[str, object]]:
    """The arguments of every ``close_position`` command the broker received since ``since``."""
    return [c.args for c in rig.sim.commands[since:] if c.name == "close_position"]


def assert_denied(rig: RiskRig, order_cid: str, text: str) -> None:
    """The gate denied the order and it never reached the broker."""
    assert any(d.client_order_id == order_cid and text in d.reason for d in rig.denied), [d.reason for d in rig.denied]
    assert order_cid not in rig.sim.submitted_ids()


# ------------------------------------------------------------ R1 MLL


def test_r1_equity_at_the_mll_floor_fails_the_account_with_no_expiry(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, COMBINE, ct_ns(2025, 10, 14, 9, 0), check_interval_s=60)
    opened(rig, ES, 5)
    since = rig.mark()
    rig.tick(ES, 5992.0)  # -8 points x $50 x 5 = -$2,000: equity $48,000 = the floor
    assert_flattened_and_locked(rig, "R1", Action.LOCKOUT, None, since)
    assert closes(rig, since) == [{"symbol": ES, "qty": None}]
    rig.until(ct_ns(2025, 10, 14, 17, 5))  # FAILED: no session roll lifts it
    assert rig.state() is TradingState.HALTED
    assert "R1" not in [e.lockout.rule_id for e in rig.of(LockoutExpired)]  # (R11's flat-time lockout came and went)
    assert [lo.expires_at_ns for lo in rig.engine.guard.lockouts if lo.rule_id == "R1"] == [None]


def test_r1_buffer_breach_locks_until_17_ct_and_relocks_while_still_inside_the_buffer(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, COMBINE, ct_ns(2025, 10, 14, 9, 0), check_interval_s=60)
    opened(rig, ES, 4)
    since = rig.mark()
    rig.tick(ES, 5990.25)  # -9.75 x $50 x 4 = -$1,950: equity $48,050 <= floor $48,000 + $100 buffer
    assert_flattened_and_locked(rig, "R1", Action.LOCKOUT, utc_ns(2025, 10, 14, 22, 0), since)
    rig.until(utc_ns(2025, 10, 14, 22, 0) + 60 * SEC)
    (expired,) = rig.of(LockoutExpired)
    assert expired.ts_ns == utc_ns(2025, 10, 14, 22, 0)
    # the EOD floor stays $48,000, so $48,050 is still inside the buffer: locked again until the next 17:00 CT
    relock = rig.of(LockoutSet)[-1].lockout
    assert relock.rule_id == "R1" and relock.expires_at_ns == utc_ns(2025, 10, 15, 22, 0)
    assert rig.state() is TradingState.HALTED


# ------------------------------------------------------------ R2 firm DLL


def test_r2_firm_daily_loss_on_a_live_funded_account_locks_until_the_session_open(tmp_path: Path) -> None:
    rig = RiskRig(
        tmp_path,
        'preset = "topstep-50k-lfa"\n',
        ct_ns(2025, 10, 14, 9, 0),
        balance=Money.of(55_000),  # MLL floor $48,000 far away: only the $2,000 DLL is hit
        check_interval_s=60,
    )
    opened(rig, ES, 2)
    since = rig.mark()
    rig.tick(ES, 5981.0)  # -19 x $50 x 2 = -$1,900 = -$2,000 + $100 buffer
    assert_flattened_and_locked(rig, "R2", Action.LOCKOUT, utc_ns(2025, 10, 14, 22, 0), since)
    denied = rig.buy(ES, 1)
    assert_denied(rig, denied.client_order_id, "HALTED")
    rig.until(utc_ns(2025, 10, 14, 22, 1))
    assert rig.state() is TradingState.ACTIVE
    assert rig.engine.state.day_net.cents == 0
    again = rig.buy(ES, 1)
    assert again.client_order_id in rig.sim.submitted_ids()


# ------------------------------------------------------------ R3 personal DLL


def test_r3_manual_partially_filled_order_breaches_and_is_closed_at_the_broker(tmp_path: Path) -> None:
    rig = RiskRig(
        tmp_path,
        PDLL_500,
        ct_ns(2025, 10, 14, 9, 0),
        sim_config=SimConfig(partial_fills=True, flatten_fill="last-price", calendar_check="off"),
        check_interval_s=60,
    )
    rig.tick(ES, 6000.0)
    cid = rig.manual(ES, Side.BUY, 3)  # placed by hand at the broker: foreign id, no gate
    rig.advance(1)
    rig.trade(ES, 6000.0, size=1)  # partial fill: 1 of 3
    assert rig.qty(ES) == 1
    rig.advance(1)
    rig.trade(ES, 6000.0, size=2)  # the rest
    assert rig.qty(ES) == 3
    assert rig.engine.state.trades_today == 2  # each fill row is a trade
    assert rig.node.orders.order(cid) is not None  # the order manager tracks the foreign order
    since = rig.mark()
    rig.tick(ES, 5997.25)  # -2.75 x $50 x 3 = -$412.50 <= -$500 + $100 buffer
    assert_flattened_and_locked(rig, "R3", Action.LOCKOUT, utc_ns(2025, 10, 14, 22, 0), since)
    rig.until(utc_ns(2025, 10, 14, 22, 0))
    assert rig.state() is TradingState.ACTIVE
    expired = rig.of(LockoutExpired)  # R3's, and R11's flat-time lockout of 15:05 CT: both end at 17:00 CT
    assert {e.lockout.rule_id for e in expired} == {"R3", "R11"}
    assert {e.ts_ns for e in expired} == {utc_ns(2025, 10, 14, 22, 0)}


@pytest.mark.parametrize(
    ("start", "expiry_utc"),
    [
        # DST ended 2025-11-02 02:00: Sunday's 17:00 CST session is Monday's trading day; 17:00 CST = 23:00 UTC
        (ct_ns(2025, 11, 2, 17, 30), utc_ns(2025, 11, 3, 23, 0)),
        # DST began 2026-03-08 02:00: Sunday's 17:00 CDT session is Monday's; 17:00 CDT = 22:00 UTC
        (ct_ns(2026, 3, 8, 17, 30), utc_ns(2026, 3, 9, 22, 0)),
        # Thanksgiving 2025-11-27: Wednesday evening to the Friday early close is one trading day (2025-11-28); the
        # next session opens Sunday 2025-11-30 17:00 CST = 23:00 UTC
        (ct_ns(2025, 11, 27, 9, 0), utc_ns(2025, 11, 30, 23, 0)),
    ],
    ids=["dst-end-2025-11-02", "dst-start-2026-03-08", "thanksgiving-2025-11-27"],
)
def test_r3_lockout_expires_at_the_next_session_open_across_dst_and_holidays(
    tmp_path: Path, start: int, expiry_utc: int
) -> None:
    rig = RiskRig(tmp_path, PDLL_500, start, check_interval_s=300)
    opened(rig, ES, 1)
    since = rig.mark()
    rig.tick(ES, 5992.0)  # -$400
    assert_flattened_and_locked(rig, "R3", Action.LOCKOUT, expiry_utc, since)
    rig.until(expiry_utc - SEC)
    assert rig.state() is TradingState.HALTED
    rig.until(expiry_utc)
    assert rig.state() is TradingState.ACTIVE
    assert rig.of(LockoutExpired)[0].ts_ns == expiry_utc


# ------------------------------------------------------------ R4 profit target


def test_r4_profit_target_reached_with_micros_flattens_and_locks(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, "[rules.profit_target]\ntarget = 300\n", ct_ns(2025, 10, 14, 9, 0), check_interval_s=60)
    opened(rig, MES, 10)
    since = rig.mark()
    rig.tick(MES, 6004.0)  # +4 x $5 x 10 = $200 = $300 - $100 buffer
    assert_flattened_and_locked(rig, "R4", Action.LOCKOUT, utc_ns(2025, 10, 14, 22, 0), since)
    assert rig.engine.state.day_realized_net.cents == 20_000


# ------------------------------------------------------------ R5 / R6 / R7


def test_r5_manual_micro_and_mini_mix_over_the_limit_closes_the_excess_of_the_newest_position(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, COMBINE, ct_ns(2025, 10, 14, 9, 0))
    rig.tick(ES, 6000.0)
    rig.tick(MES, 6000.0)
    rig.manual(ES, Side.BUY, 4)
    rig.tick(ES, 6000.0)
    rig.manual(MES, Side.BUY, 20)  # 4 minis + 20 micros (2 minis at 10:1) = 6 > 5
    since = rig.mark()
    rig.tick(MES, 6000.0)
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action, breach.decision.symbol) == ("R5", Action.CLOSE_POSITION, MES)
    assert breach.decision.qty == 10  # the excess: 1 mini = 10 micros, not the whole 20
    assert "cancel_all" not in rig.commands_since(since)  # an excess close cancels opening orders only
    assert closes(rig, since) == [{"symbol": MES, "qty": 10}]
    assert rig.qty(MES) == 10 and rig.broker_qty(MES) == 10
    assert rig.qty(ES) == 4  # the older position stays
    assert rig.state() is TradingState.ACTIVE and not rig.engine.guard.lockouts
    more = rig.buy(ES, 1)  # 6 minis: denied before the broker
    assert_denied(rig, more.client_order_id, "R5")


def test_r5_excess_close_keeps_the_protective_stop_of_the_rest_working(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, COMBINE, ct_ns(2025, 10, 14, 9, 0))
    opened(rig, ES, 5)
    stop = rig.stop(ES, Side.SELL, 5, "5990")
    rig.tick(ES, 6000.0)
    assert status(stop) is OrderStatus.ACCEPTED
    rig.manual(ES, Side.BUY, 2)  # 7 > 5 by hand
    since = rig.mark()
    rig.tick(ES, 6000.0)
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.symbol, breach.decision.qty) == ("R5", ES, 2)
    assert closes(rig, since) == [{"symbol": ES, "qty": 2}]
    assert rig.qty(ES) == 5 and rig.broker_qty(ES) == 5
    assert status(stop) is OrderStatus.ACCEPTED  # the stop protecting the 5 left is not canceled
    assert rig.state() is TradingState.ACTIVE and not rig.engine.guard.lockouts


def test_r6_xfa_scaling_plan_allows_two_lots_on_day_one(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, 'preset = "topstep-50k-xfa"\n', ct_ns(2025, 10, 14, 9, 0))
    rig.tick(ES, 6000.0)
    big = rig.buy(ES, 3)
    assert_denied(rig, big.client_order_id, "R6")
    rig.manual(ES, Side.BUY, 3)  # by hand: over the day's 2-lot limit
    rig.tick(ES, 6000.0)
    breach = next(b for b in rig.of(RuleBreached) if b.rule_id == "R6")
    assert breach.decision.action is Action.CLOSE_POSITION and breach.decision.symbol == ES
    assert breach.decision.qty == 1  # the excess over the 2-lot limit
    assert rig.qty(ES) == 2 and rig.broker_qty(ES) == 2
    assert rig.state() is TradingState.ACTIVE and not rig.engine.guard.lockouts


def test_r7_blocked_symbol_opened_by_hand_is_closed(tmp_path: Path) -> None:
    toml = "[rules.symbol_limits]\nsymbols = {NQ = {blocked = true}}\n"
    rig = RiskRig(tmp_path, toml, ct_ns(2025, 10, 14, 9, 0))
    rig.tick(NQ, 25000.0)
    order = rig.buy(NQ, 1)
    assert_denied(rig, order.client_order_id, "R7")
    rig.manual(NQ, Side.BUY, 1)
    since = rig.mark()
    rig.tick(NQ, 25000.0)
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action) == ("R7", Action.CLOSE_POSITION)
    assert "close_position" in rig.commands_since(since)
    assert rig.is_flat() and rig.state() is TradingState.ACTIVE


def test_r7_side_limit_exceeded_by_hand_closes_only_the_excess(tmp_path: Path) -> None:
    toml = "[rules.symbol_limits]\nsymbols = {NQ = {long_max = 2, short_max = 2}}\n"
    rig = RiskRig(tmp_path, toml, ct_ns(2025, 10, 14, 9, 0))
    opened(rig, NQ, 2, 25000.0)
    rig.manual(NQ, Side.BUY, 2)  # 4 long > 2
    since = rig.mark()
    rig.tick(NQ, 25000.0)
    breach = next(b for b in rig.of(RuleBreached) if b.rule_id == "R7")
    assert (breach.decision.action, breach.decision.symbol, breach.decision.qty) == (Action.CLOSE_POSITION, NQ, 2)
    assert closes(rig, since) == [{"symbol": NQ, "qty": 2}]
    assert rig.qty(NQ) == 2 and rig.broker_qty(NQ) == 2
    assert rig.state() is TradingState.ACTIVE


# ------------------------------------------------------------ R8 / R9


def test_r8_trade_limit_reduce_only_cancels_opening_orders_keeps_the_position_until_17_ct(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, "[rules.trade_limits]\nmax_per_day = 3\n", ct_ns(2025, 10, 14, 9, 0), check_interval_s=60)
    opened(rig, ES, 1)
    rig.buy(ES, 1)
    rig.tick(ES, 6000.0)
    resting = rig.limit(ES, Side.BUY, 1, "5990")  # an opening order working at the exchange
    assert status(resting) is OrderStatus.ACCEPTED
    rig.buy(ES, 1)
    rig.tick(ES, 6000.0)  # the third fill
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action) == ("R8", Action.REDUCE_ONLY)
    assert rig.state() is TradingState.REDUCING
    assert status(resting) is OrderStatus.CANCELED
    assert rig.qty(ES) == 3  # never liquidates
    assert not rig.engine.guard.lockouts
    opening = rig.buy(ES, 1)
    assert_denied(rig, opening.client_order_id, "REDUCING")
    reducing = rig.sell(ES, 1)
    rig.tick(ES, 6000.0)
    assert reducing.status is OrderStatus.FILLED and rig.qty(ES) == 2
    rig.until(utc_ns(2025, 10, 14, 22, 0) + 60 * SEC)  # the day rolls: the count resets
    assert rig.state() is TradingState.ACTIVE


def test_r9_two_losing_round_trips_through_a_reversal_lock_out(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, "[rules.cooldown]\nmax_consecutive_losses = 2\n", ct_ns(2025, 10, 14, 9, 0))
    opened(rig, ES, 1)
    rig.tick(ES, 5999.0)
    rig.sell(ES, 2)  # through zero: the long round trip ends at a loss, a short one starts
    rig.tick(ES, 5999.0)
    assert rig.qty(ES) == -1
    assert rig.engine.state.consecutive_losses == 1
    rig.tick(ES, 6000.0)
    rig.buy(ES, 1)
    since = rig.mark()
    rig.tick(ES, 6000.0)  # the short closes at a loss: two in a row
    assert_flattened_and_locked(rig, "R9", Action.LOCKOUT, utc_ns(2025, 10, 14, 22, 0), since)


# ------------------------------------------------------------ R10 / R11


def test_r10_window_end_flattens_and_stays_reduce_only_until_the_next_window(tmp_path: Path) -> None:
    toml = '[rules.session_windows]\nwindows = [{start = "08:00", end = "10:00"}]\non_window_end = "flatten"\n'
    rig = RiskRig(tmp_path, toml, ct_ns(2025, 10, 14, 9, 50))
    opened(rig, ES, 1)
    rig.until(ct_ns(2025, 10, 14, 9, 59, 55))
    assert rig.qty(ES) == 1
    since = rig.mark()
    rig.until(ct_ns(2025, 10, 14, 10, 0, 5))
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action) == ("R10", Action.FLATTEN)
    assert ct_ns(2025, 10, 14, 10, 0) <= breach.ts_ns <= ct_ns(2025, 10, 14, 10, 0, 5)  # the 5 s CLOCK check
    assert rig.commands_since(since)[:2] == ["cancel_all", "close_position"]
    assert rig.is_flat()
    assert rig.state() is TradingState.REDUCING
    assert rig.engine.guard.decisions["R10"].until_ns == utc_ns(2025, 10, 15, 13, 0)  # 08:00 CDT next day
    late = rig.buy(ES, 1)
    assert_denied(rig, late.client_order_id, "REDUCING")


def test_r11_black_friday_early_close_flattens_at_12_10_ct_and_locks_until_sunday(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, PDLL_500, ct_ns(2025, 11, 28, 11, 0), check_interval_s=60)
    opened(rig, ES, 1)
    rig.until(ct_ns(2025, 11, 28, 12, 5))  # the entry cutoff: 12:15 - 10 min
    late = rig.buy(ES, 1)
    assert_denied(rig, late.client_order_id, "R11")
    rig.until(ct_ns(2025, 11, 28, 12, 9, 59))
    assert rig.qty(ES) == 1
    since = rig.mark()
    rig.until(ct_ns(2025, 11, 28, 12, 10))  # flat time: the early close 12:15 CT minus 5 min
    (breach,) = rig.of(RuleBreached)
    assert breach.rule_id == "R11" and breach.ts_ns == ct_ns(2025, 11, 28, 12, 10)
    assert_flattened_and_locked(rig, "R11", Action.LOCKOUT, utc_ns(2025, 11, 30, 23, 0), since)
    rig.until(utc_ns(2025, 11, 30, 23, 0) - SEC)
    assert rig.state() is TradingState.HALTED
    rig.until(utc_ns(2025, 11, 30, 23, 0))
    assert rig.state() is TradingState.ACTIVE


def test_r11_friday_flat_time_at_15_05_ct_locks_until_sunday_17_ct(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, PDLL_500, ct_ns(2025, 10, 17, 14, 50), check_interval_s=60)
    opened(rig, ES, 1)
    opened(rig, MES, 3)
    since = rig.mark()
    rig.until(ct_ns(2025, 10, 17, 15, 5))
    assert_flattened_and_locked(rig, "R11", Action.LOCKOUT, utc_ns(2025, 10, 19, 22, 0), since)


# ------------------------------------------------------------ R12 / R13 / R14


def test_r12_position_loss_closes_that_position_only(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, "[rules.max_position_loss]\nmax_loss_usd = 300\n", ct_ns(2025, 10, 14, 9, 0))
    opened(rig, ES, 2)
    opened(rig, MES, 1)
    since = rig.mark()
    rig.tick(ES, 5998.0)  # ES -2 x $50 x 2 = -$200 = -($300 - $100 buffer)
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action, breach.decision.symbol) == ("R12", Action.CLOSE_POSITION, ES)
    assert closes(rig, since) == [{"symbol": ES, "qty": None}]
    assert rig.qty(ES) == 0 and rig.qty(MES) == 1
    assert rig.state() is TradingState.ACTIVE and not rig.engine.guard.lockouts


def test_r13_unprotected_position_is_closed_after_the_grace_period(tmp_path: Path) -> None:
    toml = '[rules.stop_required]\ngrace_s = 60\non_missing = "close"\ndefault_stop_ticks = 8\n'
    rig = RiskRig(tmp_path, toml, ct_ns(2025, 10, 14, 9, 0))
    opened(rig, MES, 1)
    rig.stop(MES, Side.SELL, 1, "5990")  # MES is protected
    opened(rig, ES, 1)  # ES is not
    t_open = rig.clock.timestamp_ns()
    rig.until(t_open + 55 * SEC)
    assert rig.qty(ES) == 1 and not rig.of(RuleBreached)
    rig.until(t_open + 66 * SEC)
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action, breach.decision.symbol) == ("R13", Action.CLOSE_POSITION, ES)
    assert t_open + 60 * SEC <= breach.ts_ns <= t_open + 66 * SEC
    assert rig.qty(ES) == 0 and rig.qty(MES) == 1
    assert rig.state() is TradingState.ACTIVE


def test_r13_attach_stop_protects_an_unprotected_position_after_the_grace_period(tmp_path: Path) -> None:
    toml = "[rules.stop_required]\ngrace_s = 60\ndefault_stop_ticks = 8\n"  # on_missing = attach_stop (default)
    rig = RiskRig(tmp_path, toml, ct_ns(2025, 10, 14, 9, 0))
    opened(rig, ES, 2)
    t_open = rig.clock.timestamp_ns()
    rig.until(t_open + 55 * SEC)
    assert not rig.node.orders.open_orders()
    rig.until(t_open + 66 * SEC)  # the guard checks every 5 s
    (stop,) = rig.node.orders.open_orders()
    assert (stop.order_type, stop.side, stop.qty, stop.stop_price) == (OrderType.STOP, Side.SELL, 2, Price.of("5998"))
    assert stop.tag == "risk:R13" and stop.reduce_only and status(stop) is OrderStatus.ACCEPTED  # the rule's tag
    assert [w.decision.rule_id for w in rig.of(RuleWarned)] == ["R13"]
    rig.until(t_open + 200 * SEC)  # covered now: no close, and no second stop
    assert rig.qty(ES) == 2 and rig.node.orders.open_orders() == [stop]
    assert not rig.of(RuleBreached) and rig.state() is TradingState.ACTIVE
    audit = rig.engine.audit
    assert isinstance(audit, RingAuditLog)
    (entry,) = audit.entries(step="attach_stop")
    assert entry.inputs["stop_price"] == "5998" and entry.inputs["qty"] == 2


def test_r13_attached_stop_canceled_by_hand_closes_the_position_after_a_second_grace_period(tmp_path: Path) -> None:
    toml = "[rules.stop_required]\ngrace_s = 60\ndefault_stop_ticks = 8\n"
    rig = RiskRig(tmp_path, toml, ct_ns(2025, 10, 14, 9, 0))
    rig.tick(ES, 6000.0)
    rig.manual(ES, Side.SELL, 1)  # a short opened by hand: the stop goes above
    rig.tick(ES, 6000.0)
    t_open = rig.clock.timestamp_ns()
    rig.until(t_open + 66 * SEC)  # the guard checks every 5 s
    (stop,) = rig.node.orders.open_orders()
    assert (stop.side, stop.stop_price) == (Side.BUY, Price.of("6002"))
    rig.sim.cancel_order(stop)  # the trader removes it at the broker
    assert status(stop) is OrderStatus.CANCELED
    rig.until(t_open + 118 * SEC)
    assert rig.qty(ES) == -1 and not rig.node.orders.open_orders()  # one attempt per position: not re-attached
    rig.until(t_open + 125 * SEC)
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action, breach.decision.symbol) == ("R13", Action.CLOSE_POSITION, ES)
    assert rig.qty(ES) == 0 and rig.broker_qty(ES) == 0


class OtherAccount:
    """The trader's second account holds 1 ES long since the epoch (R14's hedge book)."""

    def other_legs(self, roots: frozenset[str]) -> list[HedgeLeg]:
        return [HedgeLeg("acct-2", ES, "ES", 1, 0)] if "ES" in roots else []


def test_r14_manual_hedge_against_another_account_is_closed_and_the_gate_denies_one(tmp_path: Path) -> None:
    toml = '[rules.no_hedging]\ngroups = [["ES", "MES"], ["NQ", "MNQ"]]\n'
    rig = RiskRig(tmp_path, toml, ct_ns(2025, 10, 14, 9, 0), hedge_book=OtherAccount())
    rig.tick(ES, 6000.0)
    rig.tick(MES, 6000.0)
    short = rig.sell(ES, 1)
    assert_denied(rig, short.client_order_id, "R14")
    rig.manual(MES, Side.SELL, 2)  # short micros by hand: the same group as the other account's long ES
    rig.tick(MES, 6000.0)
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action, breach.decision.symbol) == ("R14", Action.CLOSE_POSITION, MES)
    assert rig.is_flat() and rig.state() is TradingState.ACTIVE


# ------------------------------------------------------------ R15 / R16


def test_r15_contracts_per_day_warns_then_goes_reduce_only(tmp_path: Path) -> None:
    toml = COMBINE + "[rules.excessive_contracts]\nwarn = 5\nblock = 10\n"
    rig = RiskRig(tmp_path, toml, ct_ns(2025, 10, 14, 9, 0))
    rig.tick(MES, 6000.0)
    rig.manual(MES, Side.BUY, 6)
    rig.tick(MES, 6000.0)
    assert [w.decision.rule_id for w in rig.of(RuleWarned)] == ["R15"]
    assert rig.state() is TradingState.ACTIVE
    rig.manual(MES, Side.SELL, 4)
    rig.tick(MES, 6000.0)  # 10 contracts today
    (breach,) = rig.of(RuleBreached)
    assert (breach.rule_id, breach.decision.action) == ("R15", Action.REDUCE_ONLY)
    assert rig.state() is TradingState.REDUCING and rig.qty(MES) == 2
    opening = rig.buy(MES, 1)
    assert_denied(rig, opening.client_order_id, "REDUCING")
    closing = rig.sell(MES, 2)
    rig.tick(MES, 6000.0)
    assert closing.status is OrderStatus.FILLED and rig.qty(MES) == 0


def test_r16_consistency_only_warns(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, COMBINE, ct_ns(2025, 10, 14, 9, 0))
    rig.engine.state.seed(daily_net_history=[(date(2025, 10, 13), Money.of(100))])
    opened(rig, ES, 1)
    since = rig.mark()
    rig.tick(ES, 6005.0)
    rig.sell(ES, 1)
    rig.tick(ES, 6005.0)  # +$250 today: 250 / 350 = 71% >= 40%
    warned = [w for w in rig.of(RuleWarned) if w.decision.rule_id == "R16"]
    assert len(warned) == 1 and warned[0].decision.used_fraction is not None
    assert warned[0].decision.used_fraction > 1.0
    assert not rig.of(RuleBreached) and rig.state() is TradingState.ACTIVE
    assert "close_position" not in rig.commands_since(since)


# ------------------------------------------------------------ disconnects


def test_breach_while_disconnected_flattens_and_locks_reconcile_keeps_the_lockout(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, PDLL_500, ct_ns(2025, 10, 14, 9, 0), check_interval_s=60)
    opened(rig, ES, 1)
    rig.disconnect()
    assert rig.state() is TradingState.REDUCING
    blocked = rig.buy(ES, 1)
    assert_denied(rig, blocked.client_order_id, "REDUCING")
    since = rig.mark()
    rig.tick(ES, 5992.0)  # -$400 while disconnected
    assert_flattened_and_locked(rig, "R3", Action.LOCKOUT, utc_ns(2025, 10, 14, 22, 0), since)
    rig.reconnect()
    assert rig.state() is TradingState.HALTED
    rig.engine.guard.reconciled()
    assert rig.state() is TradingState.HALTED and "connection" not in rig.engine.guard.conditions
    rig.until(utc_ns(2025, 10, 14, 22, 0))
    assert rig.state() is TradingState.ACTIVE


def test_disconnect_is_reduce_only_until_reconciled_and_a_manual_opening_fill_is_closed(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, PDLL_500, ct_ns(2025, 10, 14, 9, 0))
    opened(rig, ES, 1)
    rig.disconnect()
    assert rig.state() is TradingState.REDUCING
    rig.manual(ES, Side.BUY, 2)  # by hand while REDUCING: the new contracts are closed again
    since = rig.mark()
    rig.tick(ES, 6000.0)
    assert ("close_position" in rig.commands_since(since)) and rig.qty(ES) == 1
    rig.reconnect()
    assert rig.state() is TradingState.REDUCING  # connected is not reconciled
    rig.engine.guard.reconciled()
    assert rig.state() is TradingState.ACTIVE
    assert rig.qty(ES) == 1


# ------------------------------------------------------------ outside conditions


def test_an_outside_condition_goes_reducing_cancels_opening_orders_and_lifts(tmp_path: Path) -> None:
    """``AccountGuard.set_condition`` (what the journal's back-pressure uses): REDUCING at once, opening orders
    canceled and denied, the position and its stop kept; lifted by ``clear_condition``."""
    rig = RiskRig(tmp_path, COMBINE, ct_ns(2025, 10, 14, 9, 0))
    opened(rig, ES, 1)
    stop = rig.stop(ES, Side.SELL, 1, "5990")
    entry = rig.limit(ES, Side.BUY, 1, "5995")
    rig.tick(ES, 6000.0)
    guard = rig.engine.guard
    guard.set_condition("journal", TradingState.REDUCING, "journal back-pressure SLOW (600 records not yet committed)")
    assert rig.state() is TradingState.REDUCING
    assert guard.conditions["journal"].startswith("journal back-pressure SLOW")
    assert status(entry) is OrderStatus.CANCELED and status(stop) is OrderStatus.ACCEPTED
    assert rig.qty(ES) == 1
    more = rig.buy(ES, 1)
    assert_denied(rig, more.client_order_id, "journal back-pressure")
    assert guard.clear_condition("journal") and not guard.clear_condition("journal")
    assert rig.state() is TradingState.ACTIVE
    with pytest.raises(ValueError, match="reserved"):
        guard.set_condition("connection", TradingState.REDUCING, "x")
    with pytest.raises(ValueError, match="ACTIVE"):
        guard.set_condition("journal", TradingState.ACTIVE, "x")
    assert not guard.clear_condition("connection")
    # the journal's back-pressure reaches the real guard the same way (propdesk.node.journaling)
    nj = NodeJournal(f"sqlite:///{tmp_path / 'j.sqlite3'}")
    nj.node_hook(None, risk=rig.engine)
    nj._on_level(BackpressureLevel.HALT)
    assert rig.state() is TradingState.REDUCING and "journal back-pressure HALT" in guard.conditions["journal"]
    assert rig.qty(ES) == 1 and status(stop) is OrderStatus.ACCEPTED  # nothing liquidated
    nj._on_level(BackpressureLevel.NORMAL)
    assert rig.state() is TradingState.ACTIVE
