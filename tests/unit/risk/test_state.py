"""Tests for the account state the risk rules read (propdesk.risk.state; risk-rules.md section 3)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

import pytest

from propdesk.core.bus import MessageBus
from propdesk.core.errors import ConfigError
from propdesk.execution.positions import PositionManager
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderStatus, OrderType
from propdesk.model.price import Money, Price
from propdesk.risk.calendar import SessionRolled
from propdesk.risk.rules.base import AccountView
from propdesk.risk.state import AccountState, MllConfig, MllMode, mll_floor

CT = ZoneInfo("America/Chicago")
ACC = AccountId(7)
ES = "ESZ6"
MES = "MESZ6"
NQ = "NQZ6"


def ct_ns(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> int:
    """A Chicago wall time as UTC ns."""
    return int(datetime(y, m, d, hh, mm, tzinfo=CT).timestamp()) * 1_000_000_000


class StubCalendar:
    """CME-like days: trading day d runs 17:00 CT on d-1 to 16:00 CT on d; weekends and ``holidays`` closed."""

    def __init__(self, holidays: frozenset[date] = frozenset()) -> None:
        self.holidays = holidays

    def _open(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays

    def trading_date(self, ts_ns: int) -> date:
        t = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(CT)
        d = t.date() + timedelta(days=1) if t.time() >= time(16) else t.date()
        while not self._open(d):
            d += timedelta(days=1)
        return d

    def day_start_ns(self, d: date) -> int:
        prev = d - timedelta(days=1)
        return int(datetime.combine(prev, time(17), tzinfo=CT).timestamp()) * 1_000_000_000


class Clock:
    def __init__(self, ts_ns: int) -> None:
        self.ts_ns = ts_ns

    def __call__(self) -> int:
        return self.ts_ns


class Rig:
    """A position manager, a working-order list and an account state on one bus."""

    def __init__(
        self,
        *,
        start: str = "50000",
        mll: MllConfig | None = None,
        new_account: bool = True,
        now: int | None = None,
        **kw: object,
    ) -> None:
        self.bus = MessageBus(timing=False)
        self.pm = PositionManager(self.bus)
        self.orders: list[Order] = []
        self.clock = Clock(now if now is not None else ct_ns(2026, 11, 17, 9))  # a Tuesday
        self.calendar = StubCalendar()
        self.ids = count(1)
        self.state = AccountState(
            ACC,
            start_balance=Money.of(start),
            positions=self.pm,
            working_orders=lambda: self.orders,
            calendar=self.calendar,
            clock=self.clock,
            mll=mll if mll is not None else MllConfig(Money.of("2000")),
            new_account=new_account,
            **kw,  # type: ignore[arg-type]
        )
        self.bus.subscribe("events.order.filled", self.state.on_fill)

    def fill(
        self, side: Side, qty: int, price: str, *, symbol: str = ES, fee: str = "0", ts: int | None = None
    ) -> OrderFilled:
        n = next(self.ids)
        f = OrderFilled(
            client_order_id=ClientOrderId(f"o{n}"),
            account_id=ACC,
            ts_event_ns=self.clock.ts_ns if ts is None else ts,
            symbol=symbol,
            side=side,
            qty=qty,
            price=Price.of(price),
            fee=Money.of(fee),
            trade_id=f"t{n}",
        )
        self.bus.publish(f.topic, f)
        return f

    def quote(self, bid: float, ask: float, symbol: str = ES) -> None:
        self.pm.update_quote(symbol, bid, ask, self.clock.ts_ns)
        self.state.on_mark()

    def roll(self, ts: int, eod: str | None = None) -> bool:
        self.clock.ts_ns = ts
        return self.state.roll_day(ts, None if eod is None else Money.of(eod))

    def order(self, side: Side, qty: int, otype: OrderType = OrderType.LIMIT, symbol: str = ES, **kw: object) -> Order:
        n = next(self.ids)
        price = {"limit_price": Price.of("5000")} if otype is OrderType.LIMIT else {}
        o = Order(ClientOrderId(f"w{n}"), ACC, symbol, side, qty, otype, **price, **kw)  # type: ignore[arg-type]
        o.status = OrderStatus.ACCEPTED
        return o


def usd(s: str) -> Money:
    return Money.of(s)


# ------------------------------------------------------------------ MLL floor (risk-rules.md section 3.4)


def test_floor_formula_50k_examples() -> None:
    cfg = MllConfig(usd("2000"))
    start = usd("50000")
    assert mll_floor(start, start, cfg) == usd("48000")
    assert mll_floor(start, usd("50500"), cfg) == usd("48500")
    assert mll_floor(start, usd("52500"), cfg) == usd("50000")
    assert mll_floor(start, usd("60000"), cfg) == usd("50000")
    assert mll_floor(start, usd("60000"), MllConfig(usd("2000"), lock_at_start=False)) == usd("58000")


def test_floor_trails_eod_balance_and_locks_at_start_50k() -> None:
    r = Rig()
    s = r.state
    assert s.mll_floor == usd("48000")
    # Tuesday: +500 realized; the floor does not move while trading (EOD mode)
    r.fill(Side.BUY, 1, "5000")
    r.fill(Side.SELL, 1, "5010")  # 40 ticks x 12.50 = 500
    assert s.balance == usd("50500") and s.mll_floor == usd("48000")
    assert r.roll(ct_ns(2026, 11, 17, 17))
    assert s.mll_floor == usd("48500")
    # Wednesday: a losing day keeps 48,500
    r.fill(Side.BUY, 1, "5000")
    r.fill(Side.SELL, 1, "4990")  # -500
    assert r.roll(ct_ns(2026, 11, 18, 17))
    assert s.balance == usd("50000") and s.mll_floor == usd("48500")
    # Thursday: EOD 52,500 -> the floor locks at 50,000 for good
    r.fill(Side.BUY, 1, "5000")
    r.fill(Side.SELL, 1, "5050")  # +2,500
    assert r.roll(ct_ns(2026, 11, 19, 17))
    assert s.balance == usd("52500") and s.mll_floor == usd("50000")
    r.fill(Side.BUY, 1, "5000")
    r.fill(Side.SELL, 1, "5020")  # +1,000
    assert r.roll(ct_ns(2026, 11, 20, 17))
    assert s.mll_floor == usd("50000")
    assert [d for d, _ in s.eod_balances] == [
        date(2026, 11, 17),
        date(2026, 11, 18),
        date(2026, 11, 19),
        date(2026, 11, 20),
    ]


def test_floor_xfa_zero_based_locks_at_zero() -> None:
    r = Rig(start="0")
    s = r.state
    assert s.mll_floor == usd("-2000")
    assert r.roll(ct_ns(2026, 11, 17, 17), eod="1000")
    assert s.mll_floor == usd("-1000")
    assert r.roll(ct_ns(2026, 11, 18, 17), eod="2500")
    assert s.mll_floor == usd("0")
    assert r.roll(ct_ns(2026, 11, 19, 17), eod="4000")
    assert s.mll_floor == usd("0")


def test_floor_intraday_modes_use_day_peaks() -> None:
    r = Rig(mll=MllConfig(usd("2000"), MllMode.INTRADAY_REALIZED))
    r.fill(Side.BUY, 1, "5000")
    r.fill(Side.SELL, 1, "5010")  # realized +500 intraday
    assert r.state.day_peak_realized == usd("50500") and r.state.mll_floor == usd("48500")
    r.fill(Side.BUY, 1, "5000")
    r.quote(5019.75, 5020.0)  # open profit: realized mode ignores it
    assert r.state.mll_floor == usd("48500")

    u = Rig(mll=MllConfig(usd("2000"), MllMode.INTRADAY_UNREALIZED))
    u.fill(Side.BUY, 1, "5000")
    u.quote(5008.0, 5008.25)  # bid +32 ticks = +400 open
    assert u.state.day_peak_equity == usd("50400") and u.state.mll_floor == usd("48400")
    u.quote(5001.0, 5001.25)  # peak stays
    assert u.state.equity == usd("50050") and u.state.mll_floor == usd("48400")


def test_floor_unknown_until_seeded() -> None:
    r = Rig(new_account=False)
    s = r.state
    assert s.mll_floor is None and s.missing_inputs() == ["mll_floor"]
    s.seed(mll_floor=usd("48500"), balance=usd("49800"))
    assert s.mll_floor == usd("48500") and s.balance == usd("49800") and s.missing_inputs() == []
    assert r.roll(ct_ns(2026, 11, 17, 17), eod="51000")
    assert s.mll_floor == usd("49000")
    with pytest.raises(ConfigError, match="above the start balance"):
        s.seed(mll_floor=usd("50100"))


# ------------------------------------------------------------------ PnL, fees, marks (sections 3.1-3.3)


def test_fees_in_every_figure_and_liquidation_marks() -> None:
    r = Rig()
    s = r.state
    r.fill(Side.BUY, 2, "5000", fee="2.80")
    assert s.day_realized_net == usd("-2.80") and s.balance == usd("49997.20")
    r.quote(4998.50, 4998.75)  # long: marked at the bid -> (-1.50 / 0.25) x 12.50 x 2 = -150 (spec 3.1)
    assert s.unrealized == usd("-150")
    assert s.day_net == usd("-152.80") and s.equity == usd("49847.20")
    r.fill(Side.SELL, 2, "5001", fee="2.80")  # +4 ticks x 2 = +100 gross
    assert s.day_realized_net == usd("94.40") and s.day_fees == usd("5.60")
    assert s.unrealized == usd("0") and s.day_net == usd("94.40") and s.balance == usd("50094.40")
    assert s.sod_balance == usd("50000")


def test_short_marked_at_ask_and_last_trade_fallback() -> None:
    r = Rig()
    r.fill(Side.SELL, 1, "5000")
    r.pm.clear_marks()
    r.pm.update_trade(ES, 4999.0, r.clock.ts_ns)  # no quote yet: last trade
    r.state.on_mark()
    assert r.state.unrealized == usd("50")
    r.quote(4998.75, 4999.5)  # ask -2 ticks
    assert r.state.unrealized == usd("25")
    assert [(p.symbol, p.signed_qty, p.unrealized) for p in r.state.positions] == [(ES, -1, usd("25"))]


def test_exit_fee_estimate_subtracted_from_unrealized() -> None:
    r = Rig(exit_fees={"ES": usd("1.40")})
    r.fill(Side.BUY, 3, "5000")
    r.quote(5000.0, 5000.25)
    assert r.state.unrealized == usd("-4.20")
    assert r.state.positions[0].unrealized == usd("-4.20")


def test_unmarked_position_is_a_missing_input() -> None:
    r = Rig()
    r.fill(Side.BUY, 1, "5000")
    r.pm.clear_marks(ES)
    assert r.state.missing_inputs() == [f"mark:{ES}"]


# ------------------------------------------------------------------ trades, contracts, round trips (3.5, R9)


def test_trades_counted_by_fills_scale_out_2_2_1_is_4_trades() -> None:
    r = Rig()
    r.fill(Side.BUY, 5, "5000")
    r.fill(Side.SELL, 2, "5001")
    r.fill(Side.SELL, 2, "5002")
    r.fill(Side.SELL, 1, "5003")
    s = r.state
    assert s.trades_today == 4 and s.trades_week == 4 and s.contracts_today == 10
    assert s.consecutive_losses == 0


def test_duplicate_fill_ignored() -> None:
    r = Rig()
    f = r.fill(Side.BUY, 1, "5000", fee="1.00")
    assert r.state.on_fill(f) is False
    r.bus.publish(f.topic, f)
    assert r.state.trades_today == 1 and r.state.day_fees == usd("1.00") and r.pm.net_qty(ACC, ES) == 1


def test_fill_of_another_account_ignored() -> None:
    r = Rig()
    f = OrderFilled(
        client_order_id=ClientOrderId("x"),
        account_id=AccountId(99),
        ts_event_ns=r.clock.ts_ns,
        symbol=ES,
        side=Side.BUY,
        qty=1,
        price=Price.of("5000"),
        fee=Money(0),
        trade_id="x1",
    )
    assert r.state.on_fill(f) is False and r.state.trades_today == 0


def test_state_applies_fill_the_position_manager_has_not_seen() -> None:
    r = Rig()
    f = OrderFilled(
        client_order_id=ClientOrderId("d"),
        account_id=ACC,
        ts_event_ns=r.clock.ts_ns,
        symbol=ES,
        side=Side.BUY,
        qty=2,
        price=Price.of("5000"),
        fee=Money(0),
        trade_id="direct",
    )
    assert r.state.on_fill(f) is True  # called directly, before the position manager
    assert r.pm.net_qty(ACC, ES) == 2 and r.state.position_qty(ES) == 2


def test_round_trip_loss_streak_counts_fees_and_resets_on_win() -> None:
    r = Rig()
    s = r.state
    # round trip 1: scaled out, net loss
    r.fill(Side.BUY, 2, "5000", fee="1.00")
    r.fill(Side.SELL, 1, "5001", fee="0.50")  # +50
    assert s.consecutive_losses == 0  # not flat yet
    r.clock.ts_ns += 60_000_000_000
    r.fill(Side.SELL, 1, "4998", fee="0.50")  # -100 -> round trip -50 - 2.00 fees
    assert s.consecutive_losses == 1 and s.last_loss_ts_ns == r.clock.ts_ns
    # round trip 2: gross break-even, fees make it a loss
    r.fill(Side.SELL, 1, "5000", fee="0.50")
    r.fill(Side.BUY, 1, "5000", fee="0.50")
    assert s.consecutive_losses == 2
    # round trip 3: a win resets the streak
    r.fill(Side.BUY, 1, "5000", fee="0.50")
    r.fill(Side.SELL, 1, "5001", fee="0.50")
    assert s.consecutive_losses == 0 and s.last_loss_ts_ns is not None


def test_reversal_ends_a_round_trip_with_a_pro_rata_fee() -> None:
    r = Rig()
    r.fill(Side.BUY, 1, "5000")
    r.fill(Side.SELL, 3, "4999", fee="3.00")  # closes long 1 at -50 (fee 1.00), opens short 2 (fee 2.00)
    assert r.state.consecutive_losses == 1 and r.state.position_qty(ES) == -2
    r.fill(Side.BUY, 2, "4990", fee="2.00")  # short 2 wins 36 ticks x 2 x 12.50 = 900
    assert r.state.consecutive_losses == 0
    assert r.state.day_realized_net == usd("845")  # -50 + 900 - 5.00 fees


# ------------------------------------------------------------------ the trading day


def test_roll_day_resets_day_figures_and_keeps_history() -> None:
    r = Rig()
    s = r.state
    r.fill(Side.BUY, 1, "5000", fee="1.00")
    r.fill(Side.SELL, 1, "4999", fee="1.00")  # -50 - 2.00 fees
    assert s.consecutive_losses == 1
    next_start = s.next_day_start_ns
    assert next_start == ct_ns(2026, 11, 17, 17)
    assert r.roll(next_start)
    assert not r.roll(next_start + 1)  # a repeated roll is ignored
    assert s.trading_date == date(2026, 11, 18) and s.day_start_ns == next_start
    assert s.trades_today == 0 and s.contracts_today == 0 and s.consecutive_losses == 0
    assert s.day_realized_net == usd("0") and s.day_fees == usd("0")
    assert s.sod_balance == s.balance == usd("49948") == s.day_peak_realized
    assert s.trades_week == 2
    assert list(s.daily_net_history) == [(date(2026, 11, 17), usd("-52"))]


def test_session_rolled_event_rolls_the_day() -> None:
    r = Rig()
    r.bus.subscribe("events.session.rolled", r.state.on_session_rolled, 50)
    start = ct_ns(2026, 11, 17, 17)
    ev = SessionRolled(ended_trading_date=date(2026, 11, 17), trading_date=date(2026, 11, 18), ts_ns=start)
    r.bus.publish(ev.topic, ev)
    assert r.state.trading_date == date(2026, 11, 18) and r.state.day_start_ns == start


def test_fill_after_next_day_start_rolls_first() -> None:
    r = Rig()
    r.fill(Side.BUY, 1, "5000")
    r.fill(Side.SELL, 1, "5001")
    r.clock.ts_ns = ct_ns(2026, 11, 17, 17, 5)
    r.fill(Side.BUY, 1, "5000")  # the roll timer has not fired yet
    s = r.state
    assert s.trading_date == date(2026, 11, 18) and s.trades_today == 1
    assert list(s.daily_net_history) == [(date(2026, 11, 17), usd("50"))]


def test_late_fill_before_day_start_changes_balance_only() -> None:
    r = Rig()
    r.roll(ct_ns(2026, 11, 17, 17))
    r.fill(Side.BUY, 1, "5000", fee="1.00", ts=ct_ns(2026, 11, 17, 15))
    s = r.state
    assert s.trades_today == 0 and s.day_realized_net == usd("0") and s.balance == usd("49999")
    assert s.sod_balance == usd("49999") and s.fills_before_day == 1


def test_week_counter_resets_at_sunday_open() -> None:
    r = Rig(now=ct_ns(2026, 11, 19, 9))  # Thursday
    s = r.state
    r.fill(Side.BUY, 1, "5000")
    r.roll(ct_ns(2026, 11, 19, 17))  # -> Friday
    r.fill(Side.SELL, 1, "5000")
    assert s.trades_week == 2 and s.trades_today == 1
    assert s.next_day_start_ns == ct_ns(2026, 11, 22, 17)  # Sunday 17:00 CT opens Monday
    r.roll(ct_ns(2026, 11, 22, 17))
    assert s.trading_date == date(2026, 11, 23) and s.trades_week == 0
    assert s.week_start_ns == ct_ns(2026, 11, 22, 17)
    r.fill(Side.BUY, 1, "5000")
    r.roll(ct_ns(2026, 11, 23, 17))  # Monday -> Tuesday: same week
    assert s.trades_week == 1 and s.trades_today == 0


def test_holiday_skipped_for_next_day_start() -> None:
    r = Rig(now=ct_ns(2026, 11, 25, 9))
    r.calendar.holidays = frozenset({date(2026, 11, 26)})
    r.state.roll_day(ct_ns(2026, 11, 25, 9))  # no-op
    assert r.roll(ct_ns(2026, 11, 25, 17))
    assert r.state.trading_date == date(2026, 11, 27)
    assert r.state.next_day_start_ns == ct_ns(2026, 11, 29, 17)


def test_best_day_and_total_profit() -> None:
    r = Rig()
    s = r.state
    for day, exit_px in ((17, "5010"), (18, "4996"), (19, "5036")):  # +500, -200, +1,800
        r.fill(Side.BUY, 1, "5000", fee="1.00")
        r.fill(Side.SELL, 1, exit_px, fee="1.00")
        r.roll(ct_ns(2026, 11, day, 17))
    assert [m for _d, m in s.daily_net_history] == [usd("498"), usd("-202"), usd("1798")]
    assert s.best_day == usd("1798") and s.total_profit == usd("2094")


def test_snapshot_restore_round_trip() -> None:
    r = Rig()
    r.fill(Side.BUY, 2, "5000", fee="1.00")
    r.fill(Side.SELL, 1, "4999", fee="0.50")
    r.roll(ct_ns(2026, 11, 17, 17), eod="50500")
    r.fill(Side.SELL, 1, "4998", fee="0.50")  # ends the round trip begun yesterday: a loss
    snap = r.state.snapshot()
    other = Rig(new_account=False, now=r.clock.ts_ns)
    other.state.restore(snap)
    s = other.state
    assert s.snapshot() == snap
    assert s.mll_floor == usd("48500") and s.balance == r.state.balance and s.trades_today == 1
    assert s.consecutive_losses == 1 and s.day_realized_net == usd("-100.50")


def test_restore_of_an_earlier_day_rolls_to_today() -> None:
    r = Rig()
    r.fill(Side.BUY, 1, "5000")
    r.fill(Side.SELL, 1, "5001")
    snap = r.state.snapshot()
    later = Rig(new_account=False, now=ct_ns(2026, 11, 18, 9))
    later.state.restore(snap)
    assert later.state.trading_date == date(2026, 11, 18) and later.state.trades_today == 0
    assert list(later.state.daily_net_history) == [(date(2026, 11, 17), usd("50"))]


# ------------------------------------------------------------------ stop risk and exposure (R1, R5)


def test_stop_risk_cases() -> None:
    brackets = {ClientOrderId("entry"): 8}
    r = Rig(bracket_stop_ticks=brackets.get)
    s = r.state
    entry = Order(ClientOrderId("entry"), ACC, ES, Side.BUY, 2, OrderType.MARKET)
    assert s.stop_risk(entry) == usd("200")  # 8 ticks x 12.50 x 2
    r.fill(Side.BUY, 2, "5000")
    r.quote(5000.0, 5000.25)
    stop = Order(ClientOrderId("s"), ACC, ES, Side.SELL, 2, OrderType.STOP, stop_price=Price.of("4997.5"))
    assert s.stop_risk(stop) == usd("250")  # |4997.50 - bid 5000.00| = 10 ticks x 12.50 x 2
    trail = Order(ClientOrderId("t"), ACC, ES, Side.SELL, 1, OrderType.TRAILING_STOP, trail_ticks=6)
    assert s.stop_risk(trail) == usd("75")
    plain = Order(ClientOrderId("p"), ACC, ES, Side.BUY, 1, OrderType.LIMIT, limit_price=Price.of("4999"))
    assert s.stop_risk(plain) == usd("0")  # no stop attached: the rules apply their default
    with_default = Rig(default_risk_ticks=20).state
    assert with_default.stop_risk(plain) == usd("250")
    unmarked = Order(ClientOrderId("u"), ACC, NQ, Side.SELL, 1, OrderType.STOP, stop_price=Price.of("20000"))
    assert s.stop_risk(unmarked) == usd("0")  # no mark for NQ: distance unknown


def test_exposure_with_working_orders() -> None:
    r = Rig()
    s = r.state
    r.fill(Side.BUY, 2, "5000")
    assert s.exposure_minis() == Decimal(2)
    r.orders.append(r.order(Side.BUY, 1))
    r.orders.append(r.order(Side.SELL, 3))
    assert s.exposure_minis() == Decimal(3)  # max(|2 + 1|, |2 - 3|)
    child = r.order(Side.SELL, 5, parent_id=ClientOrderId("w1"))
    r.orders.append(child)
    assert s.exposure_minis() == Decimal(3)  # bracket children excluded
    r.orders.append(r.order(Side.BUY, 10, symbol=MES))
    assert s.exposure_minis() == Decimal(4)  # 10 micros = 1 mini
    extra = r.order(Side.BUY, 2)
    assert s.exposure_minis(extra) == Decimal(6)  # |2 + 1 + 2| + 1
    assert s.exposure_minis(extra, count_working_orders=False) == Decimal(4)
    assert s.position_minis() == Decimal(2)


def test_exposure_oco_counts_largest_leg_and_skips_reduce_only() -> None:
    r = Rig(micro_ratio=1)
    a = r.order(Side.BUY, 2, linked_ids=(ClientOrderId("zz"),))
    b = r.order(Side.BUY, 3, linked_ids=(a.client_order_id,))
    r.orders.extend([a, b, r.order(Side.SELL, 4, reduce_only=True), r.order(Side.BUY, 1, symbol=MES)])
    assert r.state.exposure_minis() == Decimal(4)  # OCO: 3, MES counted 1:1
    assert r.state.weight(MES) == 1.0 and r.state.root_of(MES) == "MES"


def test_modify_replaces_the_working_order_in_exposure() -> None:
    r = Rig()
    w = r.order(Side.BUY, 3)
    r.orders.append(w)
    bigger = r.order(Side.BUY, 5)
    bigger.client_order_id = w.client_order_id
    assert r.state.exposure_minis(bigger) == Decimal(5)


def test_is_an_account_view_with_cached_reads() -> None:
    r = Rig()
    view: AccountView = r.state
    r.fill(Side.BUY, 1, "5000")
    r.quote(5001.0, 5001.25)
    assert view.positions is view.positions  # not rebuilt on every read
    assert view.day_net is view.day_net and view.equity == usd("50050")
    assert view.working_orders == [] and view.now_ns == r.clock.ts_ns


def test_bad_configuration_raises() -> None:
    with pytest.raises(ConfigError, match="default_risk_ticks"):
        Rig(default_risk_ticks=0)
    with pytest.raises(ConfigError, match="micro_ratio"):
        Rig(micro_ratio=0)
