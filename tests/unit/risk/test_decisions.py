"""Tests for combining risk decisions (propdesk.risk.decisions)."""

from __future__ import annotations

from propdesk.risk.decisions import ALLOW, Action, Decision, TradingState, combine


def test_nothing_decided_is_active() -> None:
    v = combine([ALLOW, ALLOW])
    assert v.allowed and v.state is TradingState.ACTIVE and v.decisions == () and v.until_ns is None


def test_most_restrictive_wins_and_latest_lockout_expiry() -> None:
    v = combine(
        [
            Decision(rule_id="R15", action=Action.WARN, reason="150 contracts", used_fraction=0.75),
            Decision(rule_id="R3", action=Action.LOCKOUT, reason="PDLL", until_ns=100),
            Decision(rule_id="R2", action=Action.LOCKOUT, reason="DLL", until_ns=200, firm=True),
            Decision(rule_id="R8", action=Action.REDUCE_ONLY, reason="trade limit"),
        ]
    )
    assert v.action is Action.LOCKOUT and v.state is TradingState.HALTED and v.until_ns == 200
    assert [d.rule_id for d in v.decisions][:2] in (["R3", "R2"], ["R2", "R3"])
    assert v.reasons.endswith("R15: 150 contracts")
    assert not v.allowed


def test_lockout_without_expiry_dominates() -> None:
    v = combine(
        [
            Decision(rule_id="R1", action=Action.LOCKOUT, reason="MLL breached", until_ns=None, firm=True),
            Decision(rule_id="R11", action=Action.LOCKOUT, reason="flat time", until_ns=500, firm=True),
        ]
    )
    assert v.until_ns is None and v.state is TradingState.HALTED


def test_states_of_actions() -> None:
    assert Decision(rule_id="x", action=Action.FLATTEN).state is TradingState.REDUCING
    assert Decision(rule_id="x", action=Action.REDUCE_ONLY).state is TradingState.REDUCING
    assert Decision(rule_id="x", action=Action.DENY).state is TradingState.ACTIVE
    assert combine([Decision(rule_id="x", action=Action.WARN)]).allowed
