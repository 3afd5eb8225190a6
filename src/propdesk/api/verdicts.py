"""A denied command's :class:`~propdesk.model.commands.Verdict` as a problem document: the stable code a client
branches on, with the rule id and the headroom left where a rule decided.

======================================== ============================ ======
verdict ``rule_id``                      problem code                 status
======================================== ============================ ======
``idempotency_conflict``                 ``IDEMPOTENCY_CONFLICT``     409
``version_conflict``                     ``VERSION_CONFLICT``         412
``HALTED``, ``REDUCING``                 ``TRADING_STATE_HALTED``     409
``admin_required``                       ``FORBIDDEN``                403
``invalid``, ``not_live``, ``unsupported`` ``VALIDATION_FAILED``      422
anything else (``R1`` ... ``R16``,       ``RISK_DENIED``              409
``strategy``, the journal's back-pressure)
======================================== ============================ ======
"""

from __future__ import annotations

from typing import Final

from propdesk.api.problems import ApiProblem, Problem, ProblemCode
from propdesk.api.schemas import money
from propdesk.model.commands import (
    ADMIN_REQUIRED,
    IDEMPOTENCY_CONFLICT,
    INVALID,
    NOT_LIVE,
    VERSION_CONFLICT,
    CommandResult,
)
from propdesk.node.desk import UNSUPPORTED

__all__ = ["problem_code", "problem_for"]

_CODES: Final[dict[str, ProblemCode]] = {
    IDEMPOTENCY_CONFLICT: ProblemCode.IDEMPOTENCY_CONFLICT,
    VERSION_CONFLICT: ProblemCode.VERSION_CONFLICT,
    "HALTED": ProblemCode.TRADING_STATE_HALTED,
    "REDUCING": ProblemCode.TRADING_STATE_HALTED,
    ADMIN_REQUIRED: ProblemCode.FORBIDDEN,
    INVALID: ProblemCode.VALIDATION_FAILED,
    NOT_LIVE: ProblemCode.VALIDATION_FAILED,
    UNSUPPORTED: ProblemCode.VALIDATION_FAILED,
}


def problem_code(rule_id: str) -> ProblemCode:
    """The problem code of a denial by ``rule_id`` (module docstring)."""
    return _CODES.get(rule_id, ProblemCode.RISK_DENIED)


def problem_for(result: CommandResult) -> ApiProblem:
    """The problem a denied ``result`` is answered with (``rule_id`` always; headroom when the rule has one)."""
    v = result.verdict
    code = problem_code(v.rule_id)
    extra: dict[str, object] = {"rule_id": v.rule_id}
    if v.headroom_usd is not None:
        extra["headroom_usd"] = money(v.headroom_usd)
    if v.headroom_qty is not None:
        extra["headroom_qty"] = format(v.headroom_qty, "f")
    return ApiProblem(Problem.of(code, v.reason or f"{result.command} denied ({v.rule_id})", **extra))
