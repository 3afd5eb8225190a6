"""DeskService on the node of a simulated account (built, not replaying): instances wait for the account's reconcile
and while it is locked out, then resume with their stored state and version; commands on a waiting instance change
what it resumes with; the rows it writes through the journal carry who, from where and why."""

from __future__ import annotations

from typing import Any

from propdesk.model.commands import (
    INVALID,
    NOT_LIVE,
    VERSION_CONFLICT,
    AddStrategy,
    PauseStrategy,
    RemoveStrategy,
    StopStrategy,
    StrategyState,
    SubmitOrder,
    UpdateStrategyParams,
)
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId
from propdesk.model.records import Lockout
from propdesk.node.desk import Desk
from propdesk.node.service import WAIT_RECONCILE, DeskService, InstanceSpec
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.replay import ReplayAccount, RunOptions
from propdesk.storage.instances import StoredInstance
from tests.conftest import ES_1MIN, resolve_shared
from tests.kit.serve import es_window

Rows = list[tuple[list[tuple[str, dict[str, Any]]], int]]


def make(rows: Rows) -> tuple[ReplayAccount, DeskService]:
    cfg = load_risk_config("topstep-50k-combine", None)
    options = RunOptions(replay=resolve_shared(ES_1MIN), strategy="", risk=cfg, speed=None)
    replay = ReplayAccount(options, bars=es_window(60))

    def record_rows(pairs: list[tuple[str, dict[str, Any]]], account_id: int) -> None:
        rows.append((pairs, account_id))

    return replay, DeskService([(Desk(replay.built), replay.symbol)], record_rows=record_rows)


def test_instances_wait_for_the_reconcile_and_the_lockout_then_resume() -> None:
    rows: Rows = []
    replay, svc = make(rows)
    first = int(replay.bars.ts_open_ns[0])
    lifts = first + 15 * 60 * 10**9
    assert replay.built.lockouts is not None
    replay.built.lockouts.save(
        Lockout(account=AccountId(1), rule_id="R3", reason="t", set_at_ns=first, expires_at_ns=lifts)
    )
    stored = StoredInstance(
        name="sma",
        account_id=1,
        strategy="sma_cross",
        symbol="ESZ5",
        desired_state="paused",
        version=3,
        params={"fast": 4, "slow": 9, "qty": 2, "symbol": "ESZ5", "tag": "sma", "timeframe": ""},
        created_ns=1,
        updated_ns=2,
    )
    warnings = svc.restore([stored], [InstanceSpec(name="sma", strategy="sma_cross", account_id=1)])
    assert warnings == [] and rows == []  # the stored instance wins over the configured one; nothing rewritten
    (view,) = svc.instances()
    assert (view.state, view.version, view.waiting) == (StrategyState.PAUSED, 3, WAIT_RECONCILE)
    assert svc.resume_waiting(1) == [] and svc.desk().strategies() == []  # not before the reconcile

    replay.built.start_risk()
    replay.node.start()
    assert svc.account_ready(1) == []
    assert svc.instances()[0].waiting.startswith("waiting: the account is locked out (R3 until")
    assert svc.desk().strategies() == []

    # a change while it waits: a stale version is refused, a fixed field too, a live one is stored
    stale = UpdateStrategyParams(idempotency_key="u0", strategy="sma", params=(("qty", 1),), expected_version=2)
    assert svc.execute(stale).verdict.rule_id == VERSION_CONFLICT
    fixed = UpdateStrategyParams(
        idempotency_key="u1", strategy="sma", params=(("timeframe", "5m"),), expected_version=3
    )
    assert svc.execute(fixed).verdict.rule_id == NOT_LIVE
    change = UpdateStrategyParams(
        idempotency_key="u2", strategy="sma", params=(("qty", 1),), expected_version=3, changed_by="ann", source="cli"
    )
    assert svc.execute(change).accepted
    ((pairs, account),) = rows
    assert account == 1 and [t for t, _ in pairs] == ["strategy_instances", "strategy_param_versions"]
    assert pairs[0][1]["params_version"] == 4 and pairs[0][1]["desired_state"] == "paused"
    assert (pairs[1][1]["version"], pairs[1][1]["changed_by"], pairs[1][1]["source"]) == (4, "ann", "cli")

    replay.clock.advance_to(lifts)  # the lockout's expiry timer fires
    assert svc.resume_waiting(1) == ["sma"]
    (on_node,) = svc.desk().strategies()
    assert (on_node.tag, on_node.state, on_node.version, on_node.params["qty"]) == ("sma", StrategyState.PAUSED, 4, 1)
    assert svc.instances()[0].waiting == ""
    again = svc.execute(change)  # the same key, now that the instance is on its node: the first result, nothing done
    assert again.replayed and again.accepted and svc.desk().strategies()[0].version == 4


def test_add_strategy_checks_its_name_reference_and_account() -> None:
    replay, svc = make([])
    replay.built.start_risk()
    replay.node.start()
    svc.account_ready(1)
    bad_name = svc.execute(AddStrategy(idempotency_key="a0", name="Has Space", strategy="sma_cross", symbol=""))
    assert bad_name.verdict.rule_id == INVALID and "instance name" in bad_name.verdict.reason
    bad_ref = svc.execute(AddStrategy(idempotency_key="a1", name="x", strategy="no_such_strategy", symbol=""))
    assert bad_ref.verdict.rule_id == INVALID and "no_such_strategy" in bad_ref.verdict.reason
    bad_param = svc.execute(
        AddStrategy(idempotency_key="a2", name="x", strategy="sma_cross", symbol="", params=(("fast", "z"),))
    )
    assert bad_param.verdict.rule_id == INVALID and "fast" in bad_param.verdict.reason
    other = svc.execute(AddStrategy(idempotency_key="a3", name="x", strategy="sma_cross", symbol="", account_id=7))
    assert other.verdict.rule_id == INVALID and "no account 7" in other.verdict.reason
    assert svc.instances() == [] and svc.desk().strategies() == []
    ok = svc.execute(AddStrategy(idempotency_key="a4", name="x", strategy="sma_cross", symbol="ES"))
    assert ok.accepted and svc.instances()[0].symbol == replay.symbol
    again = svc.execute(AddStrategy(idempotency_key="a4", name="x", strategy="sma_cross", symbol="ES"))
    assert again.replayed and again.accepted
    conflict = svc.execute(AddStrategy(idempotency_key="a4", name="y", strategy="sma_cross", symbol="ES"))
    assert conflict.verdict.rule_id == "idempotency_conflict"
    assert svc.execute(PauseStrategy(idempotency_key="p", strategy="nope")).verdict.rule_id == INVALID
    unknown = svc.execute(SubmitOrder(idempotency_key="s", symbol="ESZ5", side=Side.BUY, qty=1, account_id=3))
    assert unknown.verdict.rule_id == INVALID


def test_an_instance_that_cannot_start_waits_with_the_error_until_removed() -> None:
    rows: Rows = []
    replay, svc = make(rows)
    stored = StoredInstance(
        name="too-fine",
        account_id=1,
        strategy="sma_cross",
        symbol="ESZ5",
        desired_state="running",
        version=1,
        params={"timeframe": "30s"},  # finer than the account's 1-minute bars
        created_ns=1,
        updated_ns=1,
    )
    assert svc.restore([stored]) == []
    replay.built.start_risk()
    replay.node.start()
    assert svc.account_ready(1) == []
    (view,) = svc.instances()
    assert view.waiting.startswith("cannot start: ") and "30s" in view.waiting
    assert svc.resume_waiting(1) == [] and svc.desk().strategies() == []
    assert svc.execute(StopStrategy(idempotency_key="s", strategy="too-fine")).accepted
    assert svc.execute(RemoveStrategy(idempotency_key="r", name="too-fine")).accepted
    assert svc.instances() == []
    assert [p[0][1]["desired_state"] for p, _ in rows] == ["stopped", "removed"]
