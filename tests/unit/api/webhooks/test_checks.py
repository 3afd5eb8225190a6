"""Every outcome the pure checks decide (rate limited, duplicate, stale, outside session, price drift), the order
:func:`judge` applies them in, and executed/denied from the Desk's verdict."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from propdesk.api.ratelimit import RateLimiter
from propdesk.api.webhooks.checks import (
    DedupeWindow,
    check_duplicate,
    check_price_drift,
    check_rate,
    check_session,
    check_stale,
    dedupe_key,
    judge,
    market_open,
)
from propdesk.api.webhooks.payloads import parse_alert
from propdesk.api.webhooks.signal import DEDUPE_WINDOW_NS, HookSettings, Judgement, Outcome, Signal, SignalAction
from propdesk.api.webhooks.symbols import resolve_signal
from propdesk.model.calendar import default_calendar
from propdesk.model.commands import Verdict
from propdesk.model.price import Money, Price
from tests.unit.api.conftest import FakeClock
from tests.unit.api.webhooks.conftest import MONDAY_NOV_3_2025, SATURDAY_NOV_8_2025

S = 1_000_000_000


def _signal(hook: HookSettings, **body: object) -> Signal:
    raw = {"ticker": "NQ1!", "action": "buy", "quantity": 1, "price": "25000", **body}
    alert = parse_alert(raw)
    return resolve_signal(alert, hook, received_ns=MONDAY_NOV_3_2025, dedupe_key=dedupe_key(hook.hook_id, raw))


def test_dedupe_key_ignores_secrets_and_uses_the_senders_id() -> None:
    a = dedupe_key("h", {"ticker": "ES", "action": "buy", "passphrase": "one"})
    assert a == dedupe_key("h", {"action": "buy", "ticker": "ES", "passphrase": "two"})
    assert a != dedupe_key("h2", {"ticker": "ES", "action": "buy"})
    assert dedupe_key("h", {"x": 1}, "id-1") == dedupe_key("h", {"y": 2}, "id-1")


def test_duplicate_within_24_hours(hook: HookSettings) -> None:
    window = DedupeWindow()
    sig = _signal(hook)
    assert check_duplicate(window, sig, MONDAY_NOV_3_2025) is None
    again = check_duplicate(window, sig, MONDAY_NOV_3_2025 + 3600 * S)
    assert again is not None and again.outcome is Outcome.DUPLICATE
    assert check_duplicate(window, sig, MONDAY_NOV_3_2025 + DEDUPE_WINDOW_NS) is None  # forgotten after 24 h
    bounded = DedupeWindow(max_keys=2)
    for k in ("a", "b", "c"):
        bounded.seen(k, 0)
    assert len(bounded) == 2 and not bounded.seen("a", 1)


def test_stale_by_the_hooks_window(hook: HookSettings) -> None:
    sig = replace(_signal(hook), sent_at_ns=MONDAY_NOV_3_2025)
    assert check_stale(sig, MONDAY_NOV_3_2025 + 30 * S, hook.max_age_s) is None
    old = check_stale(sig, MONDAY_NOV_3_2025 + 31 * S, hook.max_age_s)
    assert old is not None and old.outcome is Outcome.STALE and "31.0 s ago" in old.reason
    future = check_stale(sig, MONDAY_NOV_3_2025 - 31 * S, hook.max_age_s)
    assert future is not None and "future" in future.reason
    assert check_stale(replace(sig, sent_at_ns=None), MONDAY_NOV_3_2025 + 10**15, hook.max_age_s) is None


def test_outside_session_allows_exits(hook: HookSettings) -> None:
    cal = default_calendar()
    assert market_open(cal, "NQ", MONDAY_NOV_3_2025) and not market_open(cal, "NQ", SATURDAY_NOV_8_2025)
    assert not market_open(cal, "NQ", 0)  # before the calendar's coverage: closed (fail closed)
    entry = _signal(hook)
    closed = check_session(entry, is_open=False, position=0)
    assert closed is not None and closed.outcome is Outcome.OUTSIDE_SESSION
    assert check_session(entry, is_open=True, position=0) is None
    assert check_session(replace(entry, action=SignalAction.EXIT, qty=None), is_open=False, position=2) is None
    assert check_session(replace(entry, action=SignalAction.CANCEL), is_open=False, position=0) is None
    assert check_session(entry, is_open=False, position=-1) is None  # buying 1 against a short 1 only reduces
    assert check_session(entry, is_open=False, position=2) is not None  # adds to a long
    towards_flat = replace(entry, target_position=1)
    assert check_session(towards_flat, is_open=False, position=3) is None
    assert check_session(replace(entry, target_position=-1), is_open=False, position=3) is not None


def test_price_drift_in_ticks(hook: HookSettings) -> None:
    sig = _signal(hook)  # NQ, tick 0.25, alert price 25000, limit 8 ticks
    assert check_price_drift(sig, Price.of("25002"), 8) is None  # 8 ticks
    drift = check_price_drift(sig, Price.of("25002.25"), 8)
    assert drift is not None and drift.outcome is Outcome.PRICE_DRIFT and "9 ticks" in drift.reason
    assert check_price_drift(sig, None, 8) is None and check_price_drift(sig, Price.of(1), None) is None
    assert check_price_drift(replace(sig, action=SignalAction.EXIT), Price.of(1), 8) is None
    assert check_price_drift(replace(sig, price=None), Price.of(1), 8) is None


def test_rate_limit_per_hook(hook: HookSettings) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert [check_rate(limiter, hook) for _ in range(hook.burst)] == [None] * hook.burst
    limited = check_rate(limiter, hook)
    assert limited is not None and limited.outcome is Outcome.RATE_LIMITED
    clock.now += 60 / hook.rate_per_minute
    assert check_rate(limiter, hook) is None


def test_judge_order_and_pass(hook: HookSettings) -> None:
    limiter = RateLimiter(clock=FakeClock())
    window = DedupeWindow()
    sig = replace(_signal(hook), sent_at_ns=MONDAY_NOV_3_2025 - 60 * S)

    def run(s: Signal, **kw: object) -> Judgement | None:
        args: dict[str, object] = {"now_ns": MONDAY_NOV_3_2025, "position": 0, "is_open": True}
        args["market_price"] = Price.of("25000")
        args.update(kw)
        return judge(s, hook, dedupe=window, limiter=limiter, **args)  # type: ignore[arg-type]

    first = run(sig, is_open=False)
    assert first is not None and first.outcome is Outcome.STALE  # stale is checked before the session
    second = run(sig)
    assert second is not None and second.outcome is Outcome.DUPLICATE
    fresh = replace(sig, dedupe_key="other", sent_at_ns=MONDAY_NOV_3_2025)
    assert run(fresh) is None
    limited = run(replace(fresh, dedupe_key="third"))
    assert limited is not None and limited.outcome is Outcome.RATE_LIMITED


def test_executed_or_denied_from_the_verdict() -> None:
    assert Judgement.of_verdict(Verdict(accepted=True)).outcome is Outcome.EXECUTED
    denied = Judgement.of_verdict(
        Verdict(accepted=False, rule_id="R2", reason="daily loss limit", headroom_usd=Money.of(Decimal("50")))
    )
    assert (denied.outcome, denied.rule_id, denied.reason) == (Outcome.DENIED, "R2", "daily loss limit")
