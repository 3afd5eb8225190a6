"""overnight_range: the overnight range, breakout brackets after the RTH open, one trade a day, the cut-off, DST."""

from __future__ import annotations

from datetime import time

import pytest

from propdesk.core.errors import ConfigError
from propdesk.model.data import NS_PER_MINUTE, Bar
from propdesk.model.enums import Side
from propdesk.strategies.overnight_range import OvernightRange, OvernightRangeConfig
from tests.stubs.context import StubContext
from tests.unit.strategies import ct_ns, make_bar

TAG = "overnight_range"


def feed(strat: OvernightRange, ctx: StubContext, bars: list[Bar]) -> None:
    for bar in bars:
        ctx.now = bar.ts_close_ns
        strat.handle_bar(bar)


def overnight(day: tuple[int, int, int], prev: tuple[int, int, int], high: float, low: float) -> list[Bar]:
    """Bars from 17:00 CT on ``prev`` to 08:29 CT on ``day`` (a few of them), spanning [low, high]."""
    mid = (high + low) / 2
    return [
        make_bar(ct_ns(*prev, 17, 0), mid, mid + 0.25, mid - 0.25, mid),
        make_bar(ct_ns(*prev, 20, 0), mid, high, mid, mid),
        make_bar(ct_ns(*day, 3, 0), mid, mid, low, mid),
        make_bar(ct_ns(*day, 8, 29), mid, mid + 0.5, mid - 0.5, mid),
    ]


def make(ctx: StubContext, **params: str) -> OvernightRange:
    strat = ctx.attach(OvernightRange.from_params({"symbol": "ESZ5", **params}))
    assert isinstance(strat, OvernightRange)
    return strat


DAY = (2025, 10, 14)  # a Tuesday (CDT)
PREV = (2025, 10, 13)


def test_range_then_long_breakout_bracket() -> None:
    ctx = StubContext()
    strat = make(ctx)
    feed(strat, ctx, overnight(DAY, PREV, high=6600.0, low=6590.0))
    assert (strat.high, strat.low) == (6600.0, 6590.0)
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 8, 30), 6595.0, 6600.0, 6594.0, 6600.0)])  # at the high: no breakout
    assert ctx.actions == []
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 8, 31), 6600.0, 6601.0, 6599.0, 6600.25)])
    (a,) = ctx.actions
    assert (a.kind, a.side, a.qty, a.stop_loss_ticks, a.take_profit_ticks) == ("bracket", Side.BUY, 1, 16, 32)
    assert a.ts_ns == ct_ns(*DAY, 8, 32)
    assert (strat.high, strat.low) == (6600.0, 6590.0)  # RTH bars do not extend the range


def test_short_breakout_with_buffer_and_custom_ticks() -> None:
    ctx = StubContext()
    strat = make(ctx, buffer_ticks="2", stop_loss_ticks="8", take_profit_ticks="12", qty="2")
    feed(strat, ctx, overnight(DAY, PREV, high=6600.0, low=6590.0))
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 8, 30), 6590.0, 6590.0, 6589.5, 6589.5)])  # 2 ticks below: not beyond
    assert ctx.actions == []
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 8, 31), 6589.5, 6589.5, 6589.25, 6589.25)])
    (a,) = ctx.actions
    assert (a.side, a.qty, a.stop_loss_ticks, a.take_profit_ticks) == (Side.SELL, 2, 8, 12)


def test_one_trade_per_day_then_reset_next_day() -> None:
    ctx = StubContext()
    strat = make(ctx)
    feed(strat, ctx, overnight(DAY, PREV, high=6600.0, low=6590.0))
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 9, 0), 6600.0, 6602.0, 6600.0, 6601.0)])
    (entry,) = ctx.of_kind("bracket")
    assert entry.order is not None
    ctx.fill(entry.order, "6601.25")
    ctx.set_position("ESZ5", TAG, 0)  # the bracket's stop-loss closed it
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 10, 0), 6585.0, 6585.0, 6580.0, 6580.0)])  # a short breakout: no 2nd trade
    assert len(ctx.of_kind("bracket")) == 1
    assert strat.trades_today == 1
    nxt = (2025, 10, 15)
    feed(strat, ctx, overnight(nxt, DAY, high=6620.0, low=6610.0))
    assert (strat.high, strat.low, strat.trades_today) == (6620.0, 6610.0, 0)
    feed(strat, ctx, [make_bar(ct_ns(*nxt, 8, 45), 6610.0, 6610.0, 6609.0, 6609.75)])
    assert [a.side for a in ctx.of_kind("bracket")] == [Side.BUY, Side.SELL]


def test_max_trades_per_day_two_and_no_entry_while_in_position_or_pending() -> None:
    ctx = StubContext()
    strat = make(ctx, max_trades_per_day="2")
    feed(strat, ctx, overnight(DAY, PREV, high=6600.0, low=6590.0))
    up = make_bar(ct_ns(*DAY, 9, 0), 6600.0, 6602.0, 6600.0, 6601.0)
    feed(strat, ctx, [up])
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 9, 1), 6601.0, 6602.0, 6600.0, 6601.0)])  # entry still pending
    assert len(ctx.of_kind("bracket")) == 1
    order = ctx.of_kind("bracket")[0].order
    assert order is not None
    ctx.fill(order, "6601.0")
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 9, 2), 6601.0, 6603.0, 6600.0, 6602.0)])  # long already
    assert len(ctx.of_kind("bracket")) == 1
    ctx.set_position("ESZ5", TAG, 0)
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 9, 3), 6602.0, 6603.0, 6601.0, 6602.0)])
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 9, 4), 6602.0, 6603.0, 6601.0, 6602.0)])
    assert strat.trades_today == 2
    assert len(ctx.of_kind("bracket")) == 2


def test_last_entry_and_cutoff_flatten() -> None:
    ctx = StubContext()
    strat = make(ctx, last_entry="10:00", cutoff="14:30")
    feed(strat, ctx, overnight(DAY, PREV, high=6600.0, low=6590.0))
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 10, 0), 6600.0, 6605.0, 6600.0, 6604.0)])  # closes 10:01 > last entry
    assert ctx.actions == []
    ctx.set_position("ESZ5", TAG, 1)  # e.g. a trade from earlier in the day
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 14, 28), 6600.0, 6601.0, 6599.0, 6600.0)])
    assert ctx.of_kind("close") == []
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 14, 29), 6600.0, 6601.0, 6599.0, 6600.0)])  # closes at 14:30
    (close,) = ctx.of_kind("close")
    assert (close.symbol, close.tag, close.ts_ns) == ("ESZ5", TAG, ct_ns(*DAY, 14, 30))
    ctx.set_position("ESZ5", TAG, 0)
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 14, 30), 6600.0, 6601.0, 6599.0, 6600.0)])
    assert len(ctx.of_kind("close")) == 1  # flat: nothing more to do


def test_default_cutoff_is_1500_ct_and_cancels_working_orders() -> None:
    ctx = StubContext()
    strat = make(ctx)
    feed(strat, ctx, overnight(DAY, PREV, high=6600.0, low=6590.0))
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 13, 58), 6600.0, 6602.0, 6600.0, 6601.0)])  # entry (closes 13:59)
    entry = ctx.of_kind("bracket")[0].order
    assert entry is not None and entry.is_open
    ctx.fill(entry, "6601.0")
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 14, 58), 6601.0, 6602.0, 6600.0, 6601.0)])
    assert ctx.of_kind("close") == []
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 14, 59), 6601.0, 6602.0, 6600.0, 6601.0)])
    assert [a.ts_ns for a in ctx.of_kind("close")] == [ct_ns(*DAY, 15, 0)]


def test_position_left_open_is_closed_on_the_next_day() -> None:
    ctx = StubContext()
    strat = make(ctx)
    feed(strat, ctx, overnight(DAY, PREV, high=6600.0, low=6590.0))
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 9, 0), 6600.0, 6601.0, 6599.0, 6600.0)])
    ctx.set_position("ESZ5", TAG, -1)
    # early close: the data stops at 12:00 CT; the next bar is the next session's first
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 17, 0), 6600.0, 6601.0, 6599.0, 6600.0)])
    assert [a.ts_ns for a in ctx.of_kind("close")] == [ct_ns(*DAY, 17, 1)]


@pytest.mark.parametrize(
    ("date", "utc_hour_of_rth_open"),
    [((2025, 7, 15), 13), ((2026, 1, 13), 14)],  # CDT = UTC-5, CST = UTC-6
)
def test_rth_open_follows_dst(date: tuple[int, int, int], utc_hour_of_rth_open: int) -> None:
    ctx = StubContext()
    strat = make(ctx)
    prev = (date[0], date[1], date[2] - 1)
    feed(strat, ctx, overnight(date, prev, high=6600.0, low=6590.0))
    rth = ct_ns(*date, 8, 30)
    assert rth % (3600 * 10**9 * 24) == utc_hour_of_rth_open * 3600 * 10**9 + 30 * NS_PER_MINUTE
    # the bar just before the RTH open extends the range; the one at the open can break out
    feed(strat, ctx, [make_bar(rth - NS_PER_MINUTE, 6600.0, 6601.0, 6600.0, 6601.0)])
    assert strat.high == 6601.0
    assert ctx.actions == []
    feed(strat, ctx, [make_bar(rth, 6601.0, 6602.0, 6601.0, 6601.25)])
    assert [a.side for a in ctx.of_kind("bracket")] == [Side.BUY]


def test_no_overnight_bars_means_no_trade() -> None:
    ctx = StubContext()
    strat = make(ctx)
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 9, 0), 6600.0, 6610.0, 6590.0, 6609.0)])
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 9, 1), 6609.0, 6650.0, 6609.0, 6650.0)])
    assert ctx.actions == []


def test_times_parse_from_strings() -> None:
    strat = OvernightRange.from_params({"rth_open": "08:30", "cutoff": "14:45:00", "last_entry": "11:00"})
    assert isinstance(strat.config, OvernightRangeConfig)
    assert (strat.config.cutoff, strat.config.last_entry) == (time(14, 45), time(11, 0))


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"stop_loss_ticks": "0"}, "stop_loss_ticks"),
        ({"take_profit_ticks": "x"}, "take_profit_ticks"),
        ({"max_trades_per_day": "0"}, "max_trades_per_day"),
        ({"buffer_ticks": "-1"}, "buffer_ticks"),
        ({"cutoff": "25:00"}, "cutoff"),
        ({"last_entry": "16:00"}, "last_entry"),
        ({"rth_open": "nine"}, "rth_open"),
    ],
)
def test_bad_parameters_raise_config_error_naming_them(params: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        OvernightRange.from_params(params)


def test_a_position_flattened_by_risk_is_not_closed_again_the_next_day() -> None:
    """Its position is the position manager's: a position the risk engine closed is not "closed" again the next day
    (such an order would open a real one)."""
    ctx = StubContext()
    strat = make(ctx)
    feed(strat, ctx, overnight(DAY, PREV, high=6600.0, low=6590.0))
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 8, 31), 6600.0, 6601.0, 6599.0, 6600.25)])
    entry = ctx.actions[0].order
    assert entry is not None
    ctx.fill(entry, "6600.50")
    ctx.outside_fill("ESZ5", TAG, -1, "6602.00")  # R11 at 15:05 CT, after the data stopped at 12:00 CT
    assert strat.position == 0
    feed(strat, ctx, [make_bar(ct_ns(*DAY, 17, 0), 6600.0, 6601.0, 6599.0, 6600.0)])
    assert ctx.of_kind("close") == []
