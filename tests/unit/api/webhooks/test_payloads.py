"""The three alert formats parsed into one Alert; refused features and malformed bodies are ``invalid``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from propdesk.api.webhooks.payloads import MAX_QTY, parse_alert
from propdesk.api.webhooks.signal import Outcome, SignalAction, SignalRejectedError
from propdesk.model.orders import OrderType
from tests.unit.api.webhooks.conftest import MONDAY_NOV_3_2025


def _rejected(body: Any) -> str:
    with pytest.raises(SignalRejectedError) as info:
        parse_alert(body)
    assert info.value.judgement.outcome is Outcome.INVALID
    return info.value.judgement.reason


def test_propdesk_schema() -> None:
    alert = parse_alert(
        {
            "propdesk": 1,
            "passphrase": "pw",
            "id": "bar-42",
            "symbol": "ES1!",
            "action": "BUY",
            "target_position": 2,
            "order_type": "limit",
            "limit_price": "6500.25",
            "price": 6500.5,
            "stop_loss_ticks": 12,
            "take_profit_ticks": 24,
            "sent_at": "2025-11-03T15:00:00Z",
            "tag": "orb",
        }
    )
    assert alert.source == "propdesk" and alert.action is SignalAction.BUY and alert.target_position == 2
    assert alert.order_type is OrderType.LIMIT and alert.limit_price == Decimal("6500.25")
    assert alert.price == Decimal("6500.5") and (alert.stop_loss_ticks, alert.take_profit_ticks) == (12, 24)
    assert alert.sent_at_ns == MONDAY_NOV_3_2025 and alert.signal_id == "bar-42" and alert.passphrase == "pw"
    assert "pw" not in repr(alert)
    assert "tag" in _rejected({"propdesk": 1, "symbol": "ES", "action": "buy", "qty": 1, "tag": "risk:R1"})
    assert "unknown_key" in _rejected({"propdesk": 1, "symbol": "ES", "action": "buy", "qty": 1, "unknown_key": 1})
    assert "limit_price" in _rejected({"propdesk": 1, "symbol": "ES", "action": "buy", "qty": 1, "order_type": "limit"})


def test_traderspost_style_tradingview_strategy_alert() -> None:
    alert = parse_alert(
        {
            "ticker": "ES1!",
            "action": "sell",
            "sentiment": "short",
            "quantity": "2",
            "price": "6500.25",
            "time": "2025-11-03T15:00:00Z",
            "interval": "5",
            "stopLoss": {"type": "stop", "stopPrice": "6505.25"},
            "takeProfit": {"limitPrice": 6490},
            "passphrase": "pw",
        }
    )
    assert (alert.source, alert.ticker, alert.action, alert.qty) == ("traderspost", "ES1!", SignalAction.SELL, 2)
    assert alert.price == Decimal("6500.25") and alert.stop_loss_price == Decimal("6505.25")
    assert alert.take_profit_price == Decimal("6490") and alert.target_position is None
    flat = parse_alert({"ticker": "ES", "action": "buy", "sentiment": "flat", "quantity": 1})
    assert flat.target_position == 0
    add = parse_alert({"ticker": "ES", "action": "add", "sentiment": "bullish", "quantity": 1})
    assert add.action is SignalAction.BUY
    assert parse_alert({"ticker": "ES", "action": "exit"}).action is SignalAction.EXIT
    assert parse_alert({"ticker": "ES", "action": "cancel"}).action is SignalAction.CANCEL


def test_traderspost_refused_features() -> None:
    assert "percent" in _rejected({"ticker": "ES", "action": "buy", "quantity": 1, "stopLoss": {"percent": 5}})
    assert "orderType" in _rejected({"ticker": "ES", "action": "buy", "quantity": 1, "orderType": "stop"})
    assert "sentiment" in _rejected({"ticker": "ES", "action": "add", "quantity": 1})


def test_pickmytrade_style() -> None:
    alert = parse_alert(
        {
            "symbol": "NQ1!",
            "date": "2025-11-03T15:00:00Z",
            "data": "Close",
            "quantity": "1",
            "risk_percentage": "0",
            "price": "25000.25",
            "tp": "0",
            "sl": "0",
            "token": "pw",
            "multiple_accounts": [{"token": "pw"}],
        }
    )
    assert (alert.source, alert.action, alert.passphrase) == ("pickmytrade", SignalAction.EXIT, "pw")
    assert alert.stop_loss_price is None and alert.take_profit_price is None
    buy = parse_alert({"symbol": "NQ", "data": "buy", "quantity": 1, "price": 25000, "sl": 24990, "tp": 25020})
    assert (buy.stop_loss_price, buy.take_profit_price) == (Decimal(24990), Decimal(25020))
    assert "risk_percentage" in _rejected({"symbol": "NQ", "data": "buy", "quantity": 0, "risk_percentage": 2})


def test_malformed_bodies_are_invalid_and_never_echo_values() -> None:
    assert "JSON object" in _rejected(["not", "an", "object"])
    assert "unknown alert format" in _rejected({"hello": "world"})
    assert "whole number" in _rejected({"ticker": "ES", "action": "buy", "quantity": "1.5"})
    assert "quantity" in _rejected({"ticker": "ES", "action": "buy", "quantity": MAX_QTY + 1})
    assert "quantity" in _rejected({"ticker": "ES", "action": "buy", "quantity": "1E+400"})
    assert "price" in _rejected({"ticker": "ES", "action": "buy", "quantity": 1, "price": "NaN"})
    assert "ISO-8601" in _rejected({"ticker": "ES", "action": "buy", "quantity": 1, "time": "yesterday"})
    reason = _rejected({"propdesk": 1, "symbol": "ES", "action": "hold", "passphrase": "hunter2"})
    assert "action" in reason and "hunter2" not in reason
