"""A denied verdict's problem code, status, rule id and headroom."""

from __future__ import annotations

from decimal import Decimal

import pytest

from propdesk.api.problems import ProblemCode
from propdesk.api.verdicts import problem_code, problem_for
from propdesk.model.commands import CommandResult, Verdict
from propdesk.model.price import Money


@pytest.mark.parametrize(
    ("rule_id", "code", "status"),
    [
        ("R1", ProblemCode.RISK_DENIED, 409),
        ("R5", ProblemCode.RISK_DENIED, 409),
        ("strategy", ProblemCode.RISK_DENIED, 409),
        ("HALTED", ProblemCode.TRADING_STATE_HALTED, 409),
        ("REDUCING", ProblemCode.TRADING_STATE_HALTED, 409),
        ("idempotency_conflict", ProblemCode.IDEMPOTENCY_CONFLICT, 409),
        ("version_conflict", ProblemCode.VERSION_CONFLICT, 412),
        ("admin_required", ProblemCode.FORBIDDEN, 403),
        ("invalid", ProblemCode.VALIDATION_FAILED, 422),
        ("not_live", ProblemCode.VALIDATION_FAILED, 422),
        ("unsupported", ProblemCode.VALIDATION_FAILED, 422),
    ],
)
def test_each_rule_id_has_its_code(rule_id: str, code: ProblemCode, status: int) -> None:
    assert problem_code(rule_id) is code and code.status == status


def test_the_problem_carries_the_rule_and_the_headroom() -> None:
    verdict = Verdict(accepted=False, rule_id="R2", reason="R2: daily loss", headroom_usd=Money.of("137.5"))
    problem = problem_for(CommandResult(idempotency_key="k", command="SubmitOrder", verdict=verdict)).problem
    assert (problem.code, problem.rule_id, problem.headroom_usd, problem.headroom_qty) == (
        ProblemCode.RISK_DENIED,
        "R2",
        "137.50",
        None,
    )
    assert problem.detail == "R2: daily loss"
    qty = Verdict(accepted=False, rule_id="R5", reason="R5", headroom_qty=Decimal("2.5"))
    assert (
        problem_for(CommandResult(idempotency_key="k", command="SubmitOrder", verdict=qty)).problem.headroom_qty
        == "2.5"
    )
