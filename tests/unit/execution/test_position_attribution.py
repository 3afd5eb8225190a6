"""Foreign fills (``manual``, ``risk:<RULE>``) close the strategies' attributed positions, and every change reaches
listeners as a :class:`StrategyPositionChange` with its cause (issue 12, part 1)."""

from __future__ import annotations

from pathlib import Path

from propdesk.core.bus import MessageBus
from propdesk.execution.positions import PositionManager
from propdesk.execution.round_trips import round_trips
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.positions import STRATEGY_POSITION_TOPICS, PositionCause, StrategyPositionChange, attribute_fill
from propdesk.model.price import Money, Price
from propdesk.model.symbology import spec_for_symbol
from propdesk.storage.export import write_fills_csv, write_trades_csv

ACC = AccountId(1)
ES = "ESZ5"


def fill(n: int, tag: str, signed: int, price: str, *, fee: str = "0", reconciled: bool = False) -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId(f"c{n}"),
        account_id=ACC,
        ts_event_ns=n * 1_000_000_000,
        symbol=ES,
        side=Side.BUY if signed > 0 else Side.SELL,
        qty=abs(signed),
        price=Price.of(price),
        fee=Money.of(fee),
        trade_id=f"t{n}",
        tag=tag,
        reconciled=reconciled,
    )


def rig() -> tuple[PositionManager, list[StrategyPositionChange]]:
    bus = MessageBus(timing=False)
    pm = PositionManager(bus)
    seen: list[StrategyPositionChange] = []
    bus.subscribe("events.strategy.position.*", seen.append)
    return pm, seen


def test_a_risk_flatten_closes_the_strategy_position_with_its_cause() -> None:
    pm, seen = rig()
    pm.on_fill(fill(1, "trend_following", 1, "6589.50"))
    pm.on_fill(fill(2, "risk:R11", -1, "6594.75"))
    pos = pm.strategy_position(ACC, "trend_following", ES)
    assert pos is not None and pos.signed_qty == 0
    assert pos.realized_pnl == Money.of("262.50")  # 21 ticks x 12.50, booked to the strategy
    assert pm.strategy_position(ACC, "risk:R11", ES) is None  # the close holds nothing of its own
    assert pm.net_qty(ACC, ES) == 0
    own, risk = seen
    assert own.cause is PositionCause.OWN_FILL and own.signed_qty == 1 and own.avg_price == Price.of("6589.50")
    assert risk.cause is PositionCause.RISK_FLATTEN and risk.source_tag == "risk:R11"
    assert (risk.tag, risk.previous_qty, risk.signed_qty, risk.delta) == ("trend_following", 1, 0, -1)


def test_a_manual_partial_close_takes_manual_then_the_most_recent_strategy() -> None:
    pm, seen = rig()
    pm.on_fill(fill(1, "a", 2, "6500"))
    pm.on_fill(fill(2, "manual", 1, "6500"))
    pm.on_fill(fill(3, "b", 1, "6500"))
    pm.on_fill(fill(4, "manual", -3, "6501", fee="3.00"))  # the trader sells 3 at the broker
    qty = {t: pm.strategy_position(ACC, t, ES).signed_qty for t in ("a", "b", "manual")}  # type: ignore[union-attr]
    assert qty == {"a": 1, "b": 0, "manual": 0}
    assert pm.net_qty(ACC, ES) == 1
    outside = seen[-3:]  # the three parts of the last fill
    assert [(c.tag, c.signed_qty) for c in outside] == [("manual", 0), ("b", 0), ("a", 1)]
    fees = sum(pm.strategy_position(ACC, t, ES).fees.cents for t in ("a", "b", "manual"))  # type: ignore[union-attr]
    assert fees == 300  # the fee is split over the parts, to the cent


def test_a_manual_trade_on_a_flat_account_opens_a_manual_position_only() -> None:
    pm, seen = rig()
    pm.on_fill(fill(1, "", 2, "6500"))
    assert pm.strategy_position(ACC, "manual", ES).signed_qty == 2  # type: ignore[union-attr]
    assert [c.tag for c in seen] == ["manual"]
    # a foreign fill past the account's position closes it, then opens its own tag's remainder (never reverses one)
    pm.on_fill(fill(2, "s", 1, "6500"))
    pm.on_fill(fill(3, "risk:R5", -5, "6500"))
    assert pm.strategy_position(ACC, "s", ES).signed_qty == 0  # type: ignore[union-attr]
    assert pm.strategy_position(ACC, "risk:R5", ES).signed_qty == -2  # type: ignore[union-attr]


def test_reconciled_fills_and_bracket_children_carry_their_cause() -> None:
    pm, seen = rig()

    class Child:
        parent_id = "entry-1"

    pm.set_order_lookup(lambda cid: Child() if cid == "c2" else None)  # type: ignore[arg-type,return-value]
    pm.on_fill(fill(1, "mr", -1, "6500"))
    pm.on_fill(fill(2, "mr", 1, "6496"))  # its stop-loss child
    pm.on_fill(fill(3, "mr", -1, "6500"))
    pm.on_fill(fill(4, "manual", 1, "6499", reconciled=True))  # found after a reconnect
    assert [c.cause for c in seen] == [
        PositionCause.OWN_FILL,
        PositionCause.BRACKET_CHILD,
        PositionCause.OWN_FILL,
        PositionCause.RECONCILE,
    ]
    assert seen[-1].tag == "mr" and seen[-1].signed_qty == 0


def test_no_change_event_is_built_without_a_listener_of_its_cause() -> None:
    bus = MessageBus(timing=False)
    pm = PositionManager(bus)
    risky: list[object] = []
    bus.subscribe(STRATEGY_POSITION_TOPICS[PositionCause.RISK_FLATTEN], risky.append)
    pm.on_fill(fill(1, "s", 1, "6500"))
    assert not bus.has_subscribers(STRATEGY_POSITION_TOPICS[PositionCause.OWN_FILL])
    pm.on_fill(fill(2, "risk:R11", -1, "6500"))
    assert len(risky) == 1


def test_attribute_fill_parts_sum_to_the_fill() -> None:
    assert attribute_fill("s", -2, 1, [("s", 1, 0)]) == [("s", -2)]  # own fills are the owner's, reversal included
    assert attribute_fill("risk:R11", -2, 2, [("a", 1, 5), ("b", 1, 9)]) == [("a", -1), ("b", -1)]  # holders order
    assert attribute_fill("manual", 1, 1, [("a", 1, 5)]) == [("manual", 1)]  # adds: the trader's own


def test_exports_carry_the_rule_tag_and_close_the_strategy_round_trip(tmp_path: Path) -> None:
    fills = [fill(1, "trend_following", 1, "6589.50"), fill(2, "risk:R11", -1, "6594.75")]
    write_fills_csv(fills, tmp_path / "fills.csv")
    rows = (tmp_path / "fills.csv").read_text(encoding="utf-8").splitlines()
    assert rows[2].split(",")[10] == "risk:R11"
    (trip,) = round_trips(fills, spec_for_symbol)
    assert trip.tag == "trend_following" and trip.gross_pnl == Money.of("262.50") and trip.fills == 2
    assert write_trades_csv(fills, tmp_path / "trades.csv", lambda fs: round_trips(fs, spec_for_symbol)) == 1
    assert ",trend_following,LONG," in (tmp_path / "trades.csv").read_text(encoding="utf-8")
