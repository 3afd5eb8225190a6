"""R9 cooldown after a loss and loss-streak lockout (propdesk.risk.rules.cooldown)."""

from __future__ import annotations

from propdesk.model.enums import Side
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.cooldown import CooldownParams, CooldownRule

from .stub_view import NEXT_DAY_START, NOW, SEC, StubView, new, pos

MIN = 60 * SEC


def r9() -> CooldownRule:
    return CooldownRule(CooldownParams(cooldown_min=15, max_consecutive_losses=3))


def test_cooldown_runs_for_n_minutes_then_ends() -> None:
    loss_at = NOW - 5 * MIN
    v = StubView(last_loss_ts_ns=loss_at, consecutive_losses=1)
    d = r9().evaluate(v, EvalPoint.FILL)
    assert d.action is Action.REDUCE_ONLY and d.until_ns == loss_at + 15 * MIN
    assert "10:10 CT" in d.reason  # the loss at 09:55 CT + 15 min
    v.now_ns = loss_at + 15 * MIN - 1
    assert r9().evaluate(v, EvalPoint.CLOCK).action is Action.REDUCE_ONLY
    v.now_ns = loss_at + 15 * MIN  # the CLOCK at the expiry ends it
    assert r9().evaluate(v, EvalPoint.CLOCK).action is Action.ALLOW
    assert r9().cooldown_end_ns(v) is None


def test_no_loss_no_cooldown() -> None:
    assert r9().evaluate(StubView(), EvalPoint.FILL).action is Action.ALLOW


def test_loss_streak_locks_out_until_next_day() -> None:
    assert r9().evaluate(StubView(consecutive_losses=2), EvalPoint.FILL).action is Action.ALLOW
    d = r9().evaluate(StubView(consecutive_losses=3, last_loss_ts_ns=NOW), EvalPoint.FILL)
    assert d.action is Action.LOCKOUT and d.until_ns == NEXT_DAY_START and "3 losing round trips" in d.reason


def test_pre_denies_openings_during_cooldown() -> None:
    v = StubView(last_loss_ts_ns=NOW - MIN, positions=[pos("ESH5", 1)])
    d = r9().check_order(v, new("ESH5", Side.BUY, 1))
    assert d.action is Action.DENY and "cooldown" in d.reason
    assert r9().check_order(v, new("ESH5", Side.SELL, 1)).action is Action.ALLOW
    v.now_ns = NOW + 20 * MIN
    assert r9().check_order(v, new("ESH5", Side.BUY, 1)).action is Action.ALLOW


def test_streak_only() -> None:
    rule = CooldownRule(CooldownParams(max_consecutive_losses=2))
    assert rule.evaluate(StubView(last_loss_ts_ns=NOW, consecutive_losses=1), EvalPoint.FILL).action is Action.ALLOW
