"""Tickers to listed contracts (continuous through the roll calendar), ES -> MES remapping in whole contracts,
brackets in prices to ticks, and the hook's allowed roots."""

from __future__ import annotations

from dataclasses import replace

import pytest

from propdesk.api.webhooks.payloads import Alert, parse_alert
from propdesk.api.webhooks.signal import HookSettings, Outcome, SignalAction, SignalRejectedError
from propdesk.api.webhooks.symbols import contract_of_ticker, remap, resolve_signal
from propdesk.model.price import Price
from propdesk.model.symbology import contract, front_month, next_contract, roll_ns
from tests.unit.api.webhooks.conftest import MONDAY_NOV_3_2025


def _rejected(alert: Alert, hook: HookSettings) -> tuple[Outcome, str]:
    with pytest.raises(SignalRejectedError) as info:
        resolve_signal(alert, hook, received_ns=MONDAY_NOV_3_2025, dedupe_key="k")
    return info.value.judgement.outcome, info.value.judgement.reason


def test_continuous_tickers_follow_the_roll() -> None:
    front = front_month("ES", MONDAY_NOV_3_2025)
    assert contract_of_ticker("ES1!", MONDAY_NOV_3_2025) == front == contract("ES", "Z", 2025)
    assert contract_of_ticker("CME_MINI:ES2!", MONDAY_NOV_3_2025) == next_contract(front)
    switch = roll_ns(front)
    assert contract_of_ticker("ES1!", switch - 1) == front
    assert contract_of_ticker("es1!", switch) == next_contract(front)
    assert contract_of_ticker("ES", MONDAY_NOV_3_2025) == front


def test_listed_tickers() -> None:
    z5 = contract("ES", "Z", 2025)
    for t in ("ESZ5", "ESZ25", "ESZ2025", "CME_MINI:ESZ2025"):
        assert contract_of_ticker(t, MONDAY_NOV_3_2025) == z5
    with pytest.raises(SignalRejectedError) as info:
        contract_of_ticker("AAPL", MONDAY_NOV_3_2025)
    assert info.value.judgement.outcome is Outcome.SYMBOL_NOT_ALLOWED


def test_remap_only_in_whole_contracts() -> None:
    z5 = contract("ES", "Z", 2025)
    mes, qty, target = remap(z5, "MES", 2, -3)
    assert (mes, qty, target) == (contract("MES", "Z", 2025), 20, -30)
    back, qty, _ = remap(mes, "ES", 10, None)
    assert (back, qty) == (z5, 1)
    with pytest.raises(SignalRejectedError, match="not a whole number"):
        remap(mes, "ES", 3, None)
    with pytest.raises(SignalRejectedError, match="tick"):
        remap(z5, "CL", 1, None)


def test_resolve_remaps_and_checks_allowed_roots(hook: HookSettings) -> None:
    alert = parse_alert({"ticker": "ES1!", "action": "buy", "quantity": 1, "target_position": 2, "price": 6500})
    sig = resolve_signal(alert, hook, received_ns=MONDAY_NOV_3_2025, dedupe_key="k")
    assert (sig.symbol, sig.root, sig.qty, sig.target_position) == ("MESZ5", "MES", 10, 20)
    assert sig.hook_id == hook.hook_id and sig.tag == hook.tag
    tagged = parse_alert({"propdesk": 1, "symbol": "ES1!", "action": "buy", "qty": 1, "tag": "risk"})
    assert resolve_signal(tagged, hook, received_ns=MONDAY_NOV_3_2025, dedupe_key="k").tag == f"{hook.tag}:risk"
    outcome, reason = _rejected(parse_alert({"ticker": "RTY1!", "action": "buy", "quantity": 1}), hook)
    assert outcome is Outcome.SYMBOL_NOT_ALLOWED and "MES, NQ" in reason
    no_remap = replace(hook, remap=())
    outcome, _ = _rejected(alert, no_remap)
    assert outcome is Outcome.SYMBOL_NOT_ALLOWED  # ES itself is not an allowed root
    micro_to_mini = replace(hook, remap=(("MNQ", "NQ"),))
    outcome, reason = _rejected(parse_alert({"ticker": "MNQ1!", "action": "sell", "quantity": 5}), micro_to_mini)
    assert outcome is Outcome.SYMBOL_NOT_ALLOWED and "0.5 NQ" in reason


def test_bracket_prices_become_ticks(hook: HookSettings) -> None:
    alert = parse_alert(
        {
            "ticker": "NQ1!",
            "action": "buy",
            "quantity": 1,
            "price": "25000.25",
            "stopLoss": {"stopPrice": "24990.25"},
            "takeProfit": {"limitPrice": "25020.25"},
        }
    )
    sig = resolve_signal(alert, hook, received_ns=MONDAY_NOV_3_2025, dedupe_key="k")
    assert (sig.stop_loss_ticks, sig.take_profit_ticks) == (40, 80)  # NQ tick 0.25: 10 and 20 points
    wrong_side = replace(alert, action=SignalAction.SELL)
    assert _rejected(wrong_side, hook)[0] is Outcome.INVALID
    off_grid = replace(
        alert, stop_loss_price=alert.stop_loss_price and alert.stop_loss_price + Price.of("0.1").as_decimal()
    )
    assert "not a whole number" in _rejected(off_grid, hook)[1]
    no_ref = replace(alert, price=None)
    assert "needs the alert's price" in _rejected(no_ref, hook)[1]


def test_buy_needs_quantity_or_target_and_limit_on_tick(hook: HookSettings) -> None:
    assert "quantity or a target" in _rejected(parse_alert({"ticker": "NQ1!", "action": "buy"}), hook)[1]
    limit = parse_alert({"ticker": "NQ1!", "action": "buy", "quantity": 1, "orderType": "limit", "limitPrice": "1.1"})
    assert "tick" in _rejected(limit, hook)[1]
    ok = replace(limit, limit_price=Price.of("25000.5").as_decimal())
    sig = resolve_signal(ok, hook, received_ns=MONDAY_NOV_3_2025, dedupe_key="k")
    assert sig.limit_price == Price.of("25000.5")
