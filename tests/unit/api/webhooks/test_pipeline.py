"""A request body from bytes to commands: limits, signature, passphrase, then resolution, checks and commands,
including a TradingView strategy alert (TradersPost-style) that becomes a bracket order on MES."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial

import pytest

from propdesk.api.ratelimit import RateLimiter
from propdesk.api.webhooks.checks import DedupeWindow, market_open
from propdesk.api.webhooks.pipeline import MAX_BODY_BYTES, Evaluation, HookAuthError, Received, evaluate, receive
from propdesk.api.webhooks.security import sign
from propdesk.api.webhooks.signal import HookSettings, Outcome, SignalRejectedError
from propdesk.model.calendar import default_calendar
from propdesk.model.commands import SubmitOrder
from propdesk.model.enums import Side
from propdesk.model.price import Price
from tests.unit.api.conftest import FakeClock
from tests.unit.api.webhooks.conftest import MONDAY_NOV_3_2025, SATURDAY_NOV_8_2025

TV_STRATEGY_ALERT = {
    "ticker": "ES1!",
    "action": "buy",
    "sentiment": "long",
    "quantity": "1",
    "price": "6500.25",
    "time": "2025-11-03T15:00:00Z",
    "stopLoss": {"type": "stop", "stopPrice": "6497.25"},
    "takeProfit": {"limitPrice": "6506.25"},
    "target_position": "1",
}


def _body(hook: HookSettings, **extra: object) -> bytes:
    return json.dumps({**TV_STRATEGY_ALERT, "passphrase": hook.passphrase, **extra}).encode()


def _evaluate(hook: HookSettings, received: Received, now_ns: int = MONDAY_NOV_3_2025, position: int = 0) -> Evaluation:
    return evaluate(
        received,
        hook,
        now_ns=now_ns,
        position_of=lambda _symbol: position,
        price_of=lambda _symbol: Price.of("6500.5"),
        is_open=partial(market_open, default_calendar()),
        dedupe=DedupeWindow(),
        limiter=RateLimiter(clock=FakeClock()),
    )


def test_tradingview_alert_becomes_a_bracket_order_on_mes(hook: HookSettings) -> None:
    received = receive(hook, _body(hook), signature=None, now_s=MONDAY_NOV_3_2025 / 1e9)
    assert "passphrase" not in received.body and received.alert.source == "traderspost"
    result = _evaluate(hook, received)
    assert result.judgement is None and result.signal is not None
    (order,) = result.commands
    assert isinstance(order, SubmitOrder)
    assert (order.symbol, order.side, order.qty, order.account_id) == ("MESZ5", Side.BUY, 10, hook.account_id)
    assert (order.stop_loss_ticks, order.take_profit_ticks) == (12, 24)  # 3 and 6 points at 0.25 per tick
    again = _evaluate(hook, received, position=10)
    assert again.judgement is None and again.commands == ()  # the target is reached: nothing more


def test_outcomes_through_the_pipeline(hook: HookSettings) -> None:
    received = receive(hook, _body(hook), signature=None, now_s=0)
    stale = _evaluate(hook, received, now_ns=MONDAY_NOV_3_2025 + 60 * 10**9)
    assert stale.judgement is not None and stale.judgement.outcome is Outcome.STALE
    weekend = receive(hook, _body(hook, time=None), signature=None, now_s=0)
    closed = _evaluate(hook, weekend, now_ns=SATURDAY_NOV_8_2025)
    assert closed.judgement is not None and closed.judgement.outcome is Outcome.OUTSIDE_SESSION
    far = receive(hook, _body(hook, price="6520.25", stopLoss=None, takeProfit=None), signature=None, now_s=0)
    drift = _evaluate(hook, far)
    assert drift.judgement is not None and drift.judgement.outcome is Outcome.PRICE_DRIFT
    other = receive(hook, _body(hook, ticker="GC1!"), signature=None, now_s=0)
    refused = _evaluate(hook, other)
    assert refused.signal is None and refused.judgement is not None
    assert refused.judgement.outcome is Outcome.SYMBOL_NOT_ALLOWED


def test_passphrase_and_signature(hook: HookSettings) -> None:
    with pytest.raises(HookAuthError, match="passphrase"):
        receive(hook, _body(hook, passphrase="guess"), signature=None, now_s=0)
    with pytest.raises(HookAuthError, match="passphrase"):
        receive(hook, json.dumps(TV_STRATEGY_ALERT).encode(), signature=None, now_s=0)
    signed = replace(hook, hmac_secret="s1gn")
    body = _body(hook)
    assert receive(signed, body, signature=sign("s1gn", body, 1_000), now_s=1_010).alert.ticker == "ES1!"
    with pytest.raises(HookAuthError, match="required"):
        receive(signed, body, signature=None, now_s=1_010)
    with pytest.raises(HookAuthError, match="window"):
        receive(signed, body, signature=sign("s1gn", body, 1_000), now_s=2_000)


def test_hostile_bodies_are_invalid(hook: HookSettings) -> None:
    for body in (
        b"x" * (MAX_BODY_BYTES + 1),
        b"not json",
        b'{"accountId": 1' + b"0" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"ticker": "ES", "price": NaN}',
        b"[1, 2]",
    ):
        with pytest.raises(SignalRejectedError) as info:
            receive(hook, body, signature=None, now_s=0)
        assert info.value.judgement.outcome is Outcome.INVALID
