"""Tests for the position manager (propdesk.execution.positions) driven through a real MessageBus.

Expected amounts come from the CME contract specs (ES $12.50 per 0.25 tick, NQ $5.00, MNQ $0.50, 6E $6.25 per
0.00005), computed in the tests with Decimal, not by the code under test.
"""

from __future__ import annotations

import itertools
import marshal
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propdesk.core.bus import HANDLER_ERROR_TOPIC, HandlerFailed, MessageBus
from propdesk.core.errors import ContractError, InvalidPriceError
from propdesk.execution.positions import PositionManager
from propdesk.model.data import Bar, QuoteTick, Timeframe, TradeTick
from propdesk.model.enums import AggressorSide, Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.positions import PositionChanged, PositionClosed, PositionEvent, PositionOpened
from propdesk.model.price import Money, Price
from propdesk.model.symbology import spec_for_symbol
from propdesk.storage import wire

ACC = AccountId(11)
OTHER = AccountId(22)
_ids = itertools.count()


def fill(
    symbol: str,
    signed_qty: int,
    price: str,
    *,
    fee: str = "0",
    tag: str = "s1",
    trade_id: str | None = None,
    ts: int = 1,
    account: AccountId = ACC,
) -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId(f"c{next(_ids)}"),
        account_id=account,
        ts_event_ns=ts,
        symbol=symbol,
        side=Side.BUY if signed_qty > 0 else Side.SELL,
        qty=abs(signed_qty),
        price=Price.of(price),
        fee=Money.of(fee),
        trade_id=trade_id if trade_id is not None else f"t{next(_ids)}",
        tag=tag,
    )


def usd(points: str, point_value: str, qty: int = 1) -> Money:
    return Money.of(Decimal(points) * Decimal(point_value) * qty)


class Recorder:
    def __init__(self, bus: MessageBus, pattern: str = "events.position.*") -> None:
        self.events: list[Any] = []
        bus.subscribe(pattern, self.events.append)


@pytest.fixture
def bus() -> MessageBus:
    return MessageBus(timing=False)


@pytest.fixture
def pm(bus: MessageBus) -> PositionManager:
    return PositionManager(bus)


def test_spec_for_symbol() -> None:
    assert spec_for_symbol("ESZ5").root == "ES"
    assert spec_for_symbol("MNQH6").root == "MNQ"
    assert spec_for_symbol("6EZ25").root == "6E"
    assert spec_for_symbol("MES").root == "MES"
    with pytest.raises(ContractError, match="XXZ5"):
        spec_for_symbol("XXZ5")
    with pytest.raises(ContractError, match="malformed"):
        spec_for_symbol("es z5")
    with pytest.raises(ContractError, match="ESF6"):  # January is not in ES's quarterly cycle
        spec_for_symbol("ESF6")


def test_fills_on_the_bus_update_positions_and_publish_events(bus: MessageBus, pm: PositionManager) -> None:
    rec = Recorder(bus)
    bus.publish("events.order.filled", fill("ESZ5", 2, "6500.00", fee="2.50", ts=10))
    bus.publish("events.order.filled", fill("ESZ5", 1, "6501.00", fee="1.25", ts=20))
    bus.publish("events.order.filled", fill("ESZ5", -3, "6502.00", fee="3.75", ts=30))
    kinds = [type(e) for e in rec.events]
    assert kinds == [PositionOpened, PositionChanged, PositionClosed]
    assert [e.topic for e in rec.events] == [
        "events.position.opened",
        "events.position.changed",
        "events.position.closed",
    ]
    opened, changed, closed = rec.events
    assert opened.position.signed_qty == 2 and opened.position.opened_ts_ns == 10
    assert changed.position.avg_price == Price.of("6500.333333333")
    expected = usd("2.00", "50", 2) + usd("1.00", "50", 1)
    assert closed.fill_realized_pnl == expected == Money.of("250.00")
    assert closed.position.realized_pnl == expected
    assert closed.position.fees == Money.of("7.50")
    assert closed.position.is_flat and closed.position.unrealized_pnl is None
    pos = pm.position(ACC, "ESZ5")
    assert pos is not None and pos.is_flat and pos.realized_net == Money.of("242.50")
    t = pm.totals(ACC)
    assert (t.realized_cents, t.fees_cents, t.fill_count, t.contracts) == (25000, 750, 3, 6)


def test_duplicate_trade_ids_are_ignored_and_counted(bus: MessageBus, pm: PositionManager) -> None:
    rec = Recorder(bus)
    f = fill("NQZ5", 1, "21000.00", fee="1.00", trade_id="T-1")
    assert pm.on_fill(f) is True
    assert pm.on_fill(f) is False
    bus.publish("events.order.filled", fill("NQZ5", 1, "21000.00", fee="1.00", trade_id="T-1"))
    assert pm.duplicate_fills == 2
    assert pm.net_qty(ACC, "NQZ5") == 1
    assert pm.totals(ACC).fees_cents == 100
    assert len(rec.events) == 1
    assert pm.has_trade(ACC, "T-1")
    # the same trade id on another account is a different execution
    assert pm.on_fill(fill("NQZ5", 1, "21000.00", trade_id="T-1", account=OTHER)) is True
    assert pm.net_qty(OTHER, "NQZ5") == 1


def test_reversal_publishes_closed_then_opened_with_split_fee(bus: MessageBus, pm: PositionManager) -> None:
    rec = Recorder(bus)
    pm.on_fill(fill("ESZ5", 2, "6500.00", ts=1))
    pm.on_fill(fill("ESZ5", -5, "6502.00", fee="5.01", ts=2))
    closed, opened = rec.events[1:]
    assert isinstance(closed, PositionClosed) and isinstance(opened, PositionOpened)
    assert closed.fill_signed_qty == -2 and opened.fill_signed_qty == -3
    assert closed.position.is_flat and closed.fill_realized_pnl == usd("2.00", "50", 2)
    assert opened.position.signed_qty == -3 and opened.position.avg_price == Price.of("6502.00")
    assert opened.fill_realized_pnl == Money(0) and opened.position.opened_ts_ns == 2
    assert closed.fill_fee + opened.fill_fee == Money.of("5.01")
    assert closed.fill_fee == Money(200)  # 501 x 2/5 rounded down
    pos = pm.position(ACC, "ESZ5")
    assert pos is not None and pos.fees == Money.of("5.01") and pos.signed_qty == -3
    # the strategy position saw one fill, and agrees with the account
    spos = pm.strategy_position(ACC, "s1", "ESZ5")
    assert spos is not None and spos.signed_qty == -3 and spos.realized_pnl == pos.realized_pnl


def test_bad_fills_change_nothing(bus: MessageBus, pm: PositionManager) -> None:
    errors = Recorder(bus, HANDLER_ERROR_TOPIC)
    with pytest.raises(ContractError):
        pm.on_fill(fill("ZZZ5", 1, "1.00", trade_id="bad-1"))
    bus.publish("events.order.filled", fill("ESZ5", 1, "6500.10", trade_id="bad-2"))
    assert len(errors.events) == 1 and isinstance(errors.events[0], HandlerFailed)
    assert "InvalidPriceError" in errors.events[0].exception
    assert pm.positions() == [] and pm.strategy_positions() == []
    assert not pm.has_trade(ACC, "bad-1") and not pm.has_trade(ACC, "bad-2")
    assert pm.totals(ACC).fill_count == 0
    with pytest.raises(InvalidPriceError):
        pm.on_fill(fill("ESZ5", 1, "6500.10", trade_id="bad-2"))


def test_untagged_fill_is_manual(pm: PositionManager) -> None:
    pm.on_fill(fill("ESZ5", 1, "6500.00", tag=""))
    pm.on_fill(fill("ESZ5", 1, "6500.00", tag="manual"))
    spos = pm.strategy_position(ACC, "", "ESZ5")
    assert spos is not None and spos.tag == "manual" and spos.signed_qty == 2
    assert [p.tag for p in pm.strategy_positions(ACC)] == ["manual"]


def test_accounts_are_netted_separately(pm: PositionManager) -> None:
    pm.on_fill(fill("ESZ5", 1, "6500.00", account=ACC))
    pm.on_fill(fill("ESZ5", -1, "6501.00", account=OTHER))
    assert pm.net_qty(ACC, "ESZ5") == 1 and pm.net_qty(OTHER, "ESZ5") == -1
    assert [p.account_id for p in pm.open_positions()] == [ACC, OTHER]
    assert pm.accounts() == [ACC, OTHER]


def test_unrealized_uses_bid_for_longs_ask_for_shorts_last_as_fallback(pm: PositionManager) -> None:
    pm.on_fill(fill("ESZ5", 2, "5000.00", ts=1))
    pm.on_fill(fill("NQZ5", -1, "21000.00", ts=1))
    # before any market data the fill prices are the last trades: no open PnL
    assert pm.unrealized_cents(ACC) == 0
    pm.update_trade("ESZ5", 4999.00, 2)
    pm.update_trade("NQZ5", 20990.00, 2)
    assert pm.unrealized_cents(ACC) == (usd("-1.00", "50", 2) + usd("10.00", "20", 1)).cents
    # quotes win over the last trade: ES long marked at the bid, NQ short at the ask
    pm.update_quote("ESZ5", 4998.50, 4998.75, 3)
    pm.update_quote("NQZ5", 20995.00, 20995.25, 3)
    es_upnl = usd("-1.50", "50", 2)  # risk-rules.md §3.1 example: -$150
    nq_upnl = usd("4.75", "20", 1)
    assert es_upnl == Money.of("-150.00")
    assert pm.unrealized_cents(ACC) == (es_upnl + nq_upnl).cents
    pos = pm.position(ACC, "ESZ5")
    assert pos is not None and pm.position_unrealized(pos) == es_upnl
    assert pm.mark_price("ESZ5", 2) == Price.of("4998.50")
    assert pm.mark_price("ESZ5", -2) == Price.of("4998.75")
    # a partial quote (NaN bid) keeps the previous bid
    pm.update_quote("ESZ5", float("nan"), 4999.00, 4)
    assert pm.mark_price("ESZ5", 2) == Price.of("4998.50")
    assert pm.mark_price("ESZ5", -2) == Price.of("4999.00")


def test_mark_mode_last(bus: MessageBus) -> None:
    pm = PositionManager(bus, mark_mode="last")
    pm.on_fill(fill("ESZ5", 1, "5000.00"))
    pm.update_quote("ESZ5", 4990.00, 4990.25, 2)
    pm.update_bar("ESZ5", 5002.00, 3)
    assert pm.unrealized_cents(ACC) == usd("2.00", "50").cents
    with pytest.raises(ValueError, match="mark_mode"):
        PositionManager(bus, mark_mode="mid")  # type: ignore[arg-type]


def test_unmarked_positions_count_zero_and_are_listed(pm: PositionManager) -> None:
    pm.on_fill(fill("ESZ5", 1, "5000.00"))
    pm.clear_marks("ESZ5")
    assert pm.unmarked_symbols(ACC) == ["ESZ5"]
    assert pm.unrealized_cents(ACC) == 0
    pm.update_quote("ESZ5", 5001.00, 5001.25, 5)
    assert pm.unmarked_symbols(ACC) == []
    assert pm.unrealized_cents(ACC) == usd("1.00", "50").cents


def test_6e_float_quotes_convert_to_exact_ticks(pm: PositionManager) -> None:
    pm.on_fill(fill("6EZ5", 3, "1.10785"))
    pm.update_quote("6EZ5", 1.10800, 1.10805, 2)  # floats: 1.108 / 0.00005 = 22159.999999999996
    assert pm.unrealized_cents(ACC) == usd("0.00015", "125000", 3).cents == 5625
    pm.update_quote("6EZ5", 0.1 + 0.2 + 0.80785, None, 3)  # 1.10785 + float noise
    assert pm.unrealized_cents(ACC) == 0


def test_no_market_data_subscription_by_default(bus: MessageBus, pm: PositionManager) -> None:
    pm.on_fill(fill("ESZ5", 1, "5000.00"))
    assert not bus.has_subscribers("data.bars.ESZ5.1m")
    assert not bus.has_subscribers("data.quotes.ESZ5")


def test_subscribe_marks_from_the_first_position_on(bus: MessageBus) -> None:
    pm = PositionManager(bus, subscribe_marks=True)
    assert not bus.has_subscribers("data.bars.ESZ5.1m")
    pm.on_fill(fill("ESZ5", 1, "5000.00", ts=1))
    assert pm.subscribed_symbols() == ["ESZ5"]
    assert bus.has_subscribers("data.bars.ESZ5.1m") and bus.has_subscribers("data.quotes.ESZ5")
    bus.publish("data.bars.ESZ5.1m", Bar("ESZ5", Timeframe.parse("1m"), 5000, 5003, 4999, 5002.0, 10, 0, 60))
    assert pm.unrealized_cents(ACC) == usd("2.00", "50").cents
    bus.publish("data.trades.ESZ5", TradeTick("ESZ5", 5003.0, 1, AggressorSide.BUYER, 61))
    assert pm.unrealized_cents(ACC) == usd("3.00", "50").cents
    bus.publish("data.quotes.ESZ5", QuoteTick("ESZ5", 5001.0, 5001.25, 5, 5, 62))
    assert pm.unrealized_cents(ACC) == usd("1.00", "50").cents
    # flat again: the subscription stays, and the marks keep following the market
    pm.on_fill(fill("ESZ5", -1, "5001.00", ts=64))
    assert pm.subscribed_symbols() == ["ESZ5"]
    bus.publish("data.trades.ESZ5", TradeTick("ESZ5", 5010.0, 1, AggressorSide.BUYER, 66))
    pm.on_fill(fill("ESZ5", 1, "5009.00", ts=67))
    bus.publish("data.quotes.ESZ5", QuoteTick("ESZ5", 5011.0, 5011.25, 5, 5, 68))
    assert pm.unrealized_cents(ACC) == usd("2.00", "50").cents
    pm.close()
    assert bus.subscriptions() == []


def test_position_manager_runs_before_default_priority_handlers(bus: MessageBus, pm: PositionManager) -> None:
    seen: list[int] = []
    bus.subscribe("events.order.filled", lambda f: seen.append(pm.net_qty(ACC, "ESZ5")))
    bus.publish("events.order.filled", fill("ESZ5", 2, "5000.00"))
    assert seen == [2]


def test_events_carry_unrealized_at_the_current_mark(bus: MessageBus, pm: PositionManager) -> None:
    rec = Recorder(bus)
    pm.update_quote("ESZ5", 4999.75, 5000.00, 1)
    pm.on_fill(fill("ESZ5", 1, "5000.00", ts=2))
    event: PositionEvent = rec.events[0]
    assert event.position.unrealized_pnl == usd("-0.25", "50")


_tags = st.sampled_from(["a", "b", "", "c"])
_fill_lists = st.lists(
    st.tuples(_tags, st.sampled_from(["MNQZ5", "NQZ5"]), st.integers(-4, 4).filter(bool), st.integers(84_000, 84_040)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(_fill_lists, st.integers(84_000, 84_040))
def test_strategy_attribution_sums_to_the_account(fills: list[tuple[str, str, int, int]], mark_tick: int) -> None:
    bus = MessageBus(timing=False)
    pm = PositionManager(bus, mark_mode="last")
    tick = Price.of("0.25")
    ts = 0
    for tag, symbol, q, t in fills:
        ts += 1
        pm.on_fill(fill(symbol, q, str(Price.from_ticks(t, tick)), fee="0.37", tag=tag, ts=ts))
    mark = float(Price.from_ticks(mark_tick, tick))
    for symbol in ("MNQZ5", "NQZ5"):
        pm.update_trade(symbol, mark, ts + 1)
    account = pm.positions(ACC)
    strategies = pm.strategy_positions(ACC)
    # quantities and fees sum exactly; realized + unrealized at one common mark sums exactly
    for symbol in ("MNQZ5", "NQZ5"):
        assert pm.net_qty(ACC, symbol) == sum(p.signed_qty for p in strategies if p.symbol == symbol)
    assert sum(p.fees_cents for p in strategies) == sum(p.fees_cents for p in account) == 37 * len(fills)

    def total(ps: list[Any]) -> int:
        return sum(p.realized_cents + (pm.position_unrealized(p) or Money(0)).cents for p in ps)

    assert total(strategies) == total(account)
    # flatten every strategy at the mark: then realized alone sums to the account's
    for p in list(strategies):
        if p.signed_qty:
            ts += 1
            pm.on_fill(fill(p.symbol, -p.signed_qty, str(Price.from_ticks(mark_tick, tick)), tag=p.tag or "", ts=ts))
    assert pm.open_positions(ACC) == []
    assert sum(p.realized_cents for p in pm.strategy_positions(ACC)) == pm.totals(ACC).realized_cents
    assert pm.totals(ACC).realized_cents == sum(p.realized_cents for p in pm.positions(ACC))


# ---------------------------------------------------------------------------------------------- captures


def test_a_capture_gives_the_journal_the_same_item_as_the_published_event(bus: MessageBus) -> None:
    """The record a capture gets (model.positions.position_change_record, made into an item by the journal's writer)
    equals encoding the event that is published, for opens, changes, a reversal through zero (two parts, fee split),
    closes, marks and manual tags; the record is plain values (marshal takes it), one object for every capture."""
    pm = PositionManager(bus)
    rec = Recorder(bus)
    items: list[tuple[object, ...]] = []
    raw: list[tuple[Any, ...]] = []

    def capture(change: tuple[Any, ...]) -> None:
        assert change[0] == wire.K_POSITION_CHANGE
        assert marshal.loads(marshal.dumps(change)) == change
        items.append(wire.position_change_item(change))

    pm.add_capture(capture)
    pm.add_capture(capture)  # added once
    pm.add_capture(raw.append)
    pm.on_fill(fill("ESZ5", 2, "6000.25", fee="2.50"))
    pm.update_quote("ESZ5", 6001.0, 6001.25, 2)
    pm.on_fill(fill("ESZ5", 1, "6000.75", fee="1.25", ts=3))
    pm.on_fill(fill("ESZ5", -5, "6002", fee="6.25", tag="", ts=4))  # reversal: closes 3, opens 2 short
    pm.on_fill(fill("ESZ5", 2, "5999.5", fee="2.50", ts=5))
    assert [type(e) for e in rec.events] == [
        PositionOpened,
        PositionChanged,
        PositionClosed,
        PositionOpened,
        PositionClosed,
    ]
    assert items == [wire.encode_position(e) for e in rec.events]
    assert [wire.position_change_item(r) for r in raw] == items
    assert pm.remove_capture(raw.append)
    assert pm.remove_capture(capture) and not pm.remove_capture(capture)
    pm.on_fill(fill("ESZ5", 1, "6000", ts=6))
    assert len(items) == 5
