"""Signals as Desk commands: cancel, exit (all or part), plain orders with their bracket, and target-position
convergence (a repeated alert does nothing, a missed one is made up, a reversal closes before it opens)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from propdesk.api.webhooks.commands import signal_commands
from propdesk.api.webhooks.signal import Signal, SignalAction
from propdesk.model.commands import CancelAllOrders, ClosePosition, SubmitOrder
from propdesk.model.enums import Side
from propdesk.model.orders import OrderType
from propdesk.model.price import Price


def _sig(action: SignalAction = SignalAction.BUY, qty: int | None = 1, target: int | None = None) -> Signal:
    return Signal(
        hook_id="h",
        source="propdesk",
        ticker="MES1!",
        symbol="MESZ5",
        root="MES",
        action=action,
        qty=qty,
        target_position=target,
        stop_loss_ticks=12,
        take_profit_ticks=24,
        received_ns=5,
        dedupe_key="ab" * 32,
    )


def _shape(cmds: list[object]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for c in cmds:
        if isinstance(c, SubmitOrder):
            out.append(("submit", c.side, c.qty))
        elif isinstance(c, ClosePosition):
            out.append(("close", c.qty))
        elif isinstance(c, CancelAllOrders):
            out.append(("cancel_all",))
    return out


def test_cancel_and_exit() -> None:
    assert _shape(signal_commands(_sig(SignalAction.CANCEL, None), 3)) == [("cancel_all",)]
    assert _shape(signal_commands(_sig(SignalAction.EXIT, None), 3)) == [("cancel_all",), ("close", None)]
    assert _shape(signal_commands(_sig(SignalAction.EXIT, None), 0)) == [("cancel_all",)]
    assert _shape(signal_commands(_sig(SignalAction.EXIT, 2), -3)) == [("close", 2)]
    assert _shape(signal_commands(_sig(SignalAction.EXIT, 5), 3)) == [("close", 3)]


def test_plain_order_carries_the_bracket_and_keys() -> None:
    cmds = signal_commands(_sig(SignalAction.SELL, 2), 0, account_id=7)
    assert len(cmds) == 1
    order = cmds[0]
    assert isinstance(order, SubmitOrder)
    assert (order.symbol, order.side, order.qty, order.account_id) == ("MESZ5", Side.SELL, 2, 7)
    assert (order.stop_loss_ticks, order.take_profit_ticks, order.order_type) == (12, 24, OrderType.MARKET)
    assert order.idempotency_key == signal_commands(_sig(SignalAction.SELL, 2), 0)[0].idempotency_key
    limit = replace(_sig(), order_type=OrderType.LIMIT, limit_price=Price.of("6500.25"))
    placed = signal_commands(limit, 0)[0]
    assert isinstance(placed, SubmitOrder) and placed.limit_price == Price.of("6500.25")
    with pytest.raises(ValueError, match="quantity or a target"):
        signal_commands(_sig(qty=None), 0)


@pytest.mark.parametrize(
    ("position", "target", "expected"),
    [
        (2, 2, []),
        (0, 0, []),
        (0, 2, [("submit", Side.BUY, 2)]),
        (1, 3, [("submit", Side.BUY, 2)]),
        (3, 1, [("close", 2)]),
        (-3, -1, [("close", 2)]),
        (-1, -4, [("submit", Side.SELL, 3)]),
        (2, 0, [("cancel_all",), ("close", None)]),
        (2, -1, [("cancel_all",), ("close", None), ("submit", Side.SELL, 1)]),
        (-2, 3, [("cancel_all",), ("close", None), ("submit", Side.BUY, 3)]),
    ],
)
def test_target_position_converges(position: int, target: int, expected: list[tuple[object, ...]]) -> None:
    assert _shape(signal_commands(_sig(target=target), position)) == expected


def test_repeated_target_alert_converges() -> None:
    sig = _sig(target=2)
    position = 0
    for _ in range(3):  # the alert arrives three times; the position after each is what its commands did
        for c in signal_commands(sig, position):
            if isinstance(c, SubmitOrder):
                position += int(c.side) * c.qty
    assert position == 2
    keys = [c.idempotency_key for c in signal_commands(_sig(target=-1), 2)]
    assert len(set(keys)) == len(keys) == 3 and all(len(k) <= 128 for k in keys)
