"""Prop-firm evaluation of a backtest: would this run have passed the Trading Combine?

The definition (``../shared/specs/risk-rules.md``; the numbers come from the risk preset, never from code):

* **Failed**: a firm rule decided LOCKOUT with no expiry -- the rules' convention for a failed account
  (:class:`propdesk.risk.decisions.Action` LOCKOUT, ``until_ns=None``). In the shipped Topstep presets only R1 does
  that: equity (realized balance + unrealized, net of fees) at or below the MLL floor, "your account will be
  liquidated, and the rule will be broken" (risk-rules.md section 3.4 and R1; https://help.topstep.com/en/articles/
  8284204). Protective actions are not failures: the R1 buffer lockout (``trigger_buffer_usd`` before the floor),
  R11 flat time, a personal rule's lockout, and the firm daily loss limit, which is "not a rule violation"
  (risk-rules.md R2; https://help.futures.topstep.com/hc/en-us/articles/8808125387923). The failure's trading day
  and rule are reported.
* **Passed**: not failed, and at the close of some trading day ``d`` both hold: the balance is at least
  ``start_balance + account_profit_target`` (the preset's target: $3,000 on the 50K Combine, risk-rules.md section
  4.1, UNVERIFIED), and the consistency target holds over the days up to ``d``: best day / total profit strictly
  below the preset's R16 ``max_best_day_pct`` (40% ships; risk-rules.md R16 and section 4.1, CONFLICT 40% / 50%;
  https://help.futures.topstep.com/hc/en-us/articles/4405772379155). Without an R16 rule consistency is not
  required. The evaluation ends at the first of "passed" and "failed".
* **In progress**: neither by the end of the data (including a run that reached the target but not consistency).

Every evaluation states why in the trader's words (:attr:`CombineEvaluation.reasons`): the failure and its rule, the
pass, or each reason it cannot pass yet: the account HALTED at the end of the run (an R1 buffer lockout is renewed at
every roll while a flat account's equity stays in the buffer, so no new trade can pass: "halted since 2025-09-17
12:53 CT: equity $50,087.50 is within the $100.00 buffer above the locked MLL floor $50,000.00; no new trade can
pass"), the profit target not reached, or the consistency target missed ("best day 2025-09-03 $2,850.00 is 3,257 %
of total profit $87.50; the rule allows 40 %").

Day figures are realized and net of fees (risk-rules.md section 6: R16 uses realized only); the MLL floor of a day
is the one in force at its close. In a bar backtest the marks are bar closes, so a breach inside a bar that
recovers by its close is not seen (the firm sees every tick): treat "passed" on bars as optimistic by that much.
A minimum number of trading days is not part of the spec and is not checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from propdesk.model.price import Money
from propdesk.node.builder import RiskSetup
from propdesk.risk.decisions import Action
from propdesk.risk.engine import DayClose, RiskEngine
from propdesk.risk.events import RuleBreached
from propdesk.risk.lockouts import MemoryLockoutStore
from propdesk.risk.outcomes import Halt
from propdesk.risk.presets import RiskConfig
from propdesk.risk.rules.common import fmt_ct, fmt_usd
from propdesk.risk.rules.consistency import best_day_share

__all__ = [
    "CombineEvaluation",
    "EvaluationStatus",
    "Failure",
    "HaltAtEnd",
    "backtest_risk_engine",
    "backtest_risk_setup",
    "evaluate_combine",
    "evaluation_of",
    "risk_summary",
]

EvaluationStatus = Literal["passed", "failed", "in_progress"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """Why an evaluation failed: the ``rule_id``, its ``reason``, when (``ts_ns``, UTC ns) and on which trading day."""

    rule_id: str
    reason: str
    ts_ns: int
    trading_date: date


@dataclass(frozen=True, slots=True, kw_only=True)
class HaltAtEnd:
    """The account was HALTED at the end of the run: since ``since_ns`` (UTC ns) by ``rule_id`` for ``reason``.

    ``equity`` is the account's equity at the end, ``mll_floor`` the floor in force (USD, ``None`` when unknown),
    ``buffer`` R1's ``trigger_buffer_usd`` and ``floor_locked`` whether the floor reached its lock level (the start
    balance, risk-rules.md section 3.4). An R1 halt of a flat account is permanent: its equity cannot move, so the
    buffer lockout is set again at every session roll.
    """

    since_ns: int
    rule_id: str | None
    reason: str
    equity: Money
    mll_floor: Money | None
    buffer: Money | None
    floor_locked: bool = False

    @property
    def permanent(self) -> bool:
        """True for an R1 (MLL buffer) halt: no trade can be placed again."""
        return self.rule_id == "R1" and self.mll_floor is not None and self.buffer is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class CombineEvaluation:
    """The result of :func:`evaluate_combine` (see the module docstring for the definition).

    Attributes:
        status: ``passed``, ``failed`` or ``in_progress``.
        preset: the risk preset's name.
        start_balance, profit_target: USD (``profit_target`` ``None``: the preset has none, so it cannot pass).
        max_best_day_pct: the consistency limit (``None``: not required).
        failure: the failure, when failed.
        passed_on: the trading day the evaluation passed.
        target_reached_on: the first trading day whose closing balance reached the target (consistency aside).
        days_traded: trading days with at least one fill, up to the end of the evaluation.
        total_profit: the sum of the day results up to the end of the evaluation, USD.
        best_day: ``(trading date, net PnL)`` of the best day, or ``None``.
        best_day_share: best day / total profit (``None`` when the total is not positive).
        consistency_ok: the share is below ``max_best_day_pct`` (``None`` when not required or not computable).
        days: every trading day of the run (the last may be incomplete), oldest first.
        halted: the account's halt in force at the end of the run, or ``None``.
        reasons: why, in the trader's words: the failure, the pass, or each reason it cannot pass (see the module
            docstring); never empty.
    """

    status: EvaluationStatus
    preset: str | None
    start_balance: Money
    profit_target: Money | None
    max_best_day_pct: Decimal | None
    failure: Failure | None
    passed_on: date | None
    target_reached_on: date | None
    days_traded: int
    total_profit: Money
    best_day: tuple[date, Money] | None
    best_day_share: float | None
    consistency_ok: bool | None
    days: tuple[DayClose, ...]
    halted: HaltAtEnd | None = None
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """:attr:`reasons` as one line (``; ``-separated)."""
        return "; ".join(self.reasons)

    def to_json_dict(self) -> dict[str, Any]:
        """The ``evaluation`` object of ``propdesk backtest --json`` (USD as strings with two decimals, dates ISO).

        ``days`` holds ``date``, ``pnl_usd``, ``balance_usd``, ``mll_floor_usd``, ``trades`` and ``complete`` per
        trading day: the per-day PnL and MLL floor series of the HTML report.
        """

        def usd(m: Money | None) -> str | None:
            return None if m is None else str(m.as_decimal())

        f = self.failure
        return {
            "status": self.status,
            "passed": self.status == "passed",
            "failed": self.status == "failed",
            "preset": self.preset,
            "start_balance_usd": usd(self.start_balance),
            "profit_target_usd": usd(self.profit_target),
            "max_best_day_pct": None if self.max_best_day_pct is None else float(self.max_best_day_pct),
            "failure": None
            if f is None
            else {
                "rule_id": f.rule_id,
                "reason": f.reason,
                "ts_ns": f.ts_ns,
                "trading_date": f.trading_date.isoformat(),
            },
            "passed_on": None if self.passed_on is None else self.passed_on.isoformat(),
            "target_reached_on": None if self.target_reached_on is None else self.target_reached_on.isoformat(),
            "days_traded": self.days_traded,
            "total_profit_usd": usd(self.total_profit),
            "best_day": None
            if self.best_day is None
            else {"date": self.best_day[0].isoformat(), "pnl_usd": usd(self.best_day[1])},
            "best_day_share": self.best_day_share,
            "consistency_ok": self.consistency_ok,
            "reasons": list(self.reasons),
            "halted": None
            if self.halted is None
            else {
                "since_ns": self.halted.since_ns,
                "rule_id": self.halted.rule_id,
                "reason": self.halted.reason,
                "equity_usd": usd(self.halted.equity),
                "mll_floor_usd": usd(self.halted.mll_floor),
                "buffer_usd": usd(self.halted.buffer),
                "floor_locked": self.halted.floor_locked,
                "permanent": self.halted.permanent,
            },
            "days": [
                {
                    "date": d.trading_date.isoformat(),
                    "pnl_usd": usd(d.net_pnl),
                    "balance_usd": usd(d.balance),
                    "mll_floor_usd": usd(d.mll_floor),
                    "trades": d.trades,
                    "complete": d.complete,
                }
                for d in self.days
            ],
        }


def _is_failure(b: RuleBreached) -> bool:
    d = b.decision
    return d.firm and d.action is Action.LOCKOUT and d.until_ns is None


def _share(days: Sequence[DayClose]) -> tuple[Money, tuple[date, Money] | None, Decimal | None]:
    return best_day_share([(d.trading_date, d.net_pnl) for d in days])


def evaluate_combine(
    days: Sequence[DayClose],
    breaches: Sequence[RuleBreached],
    *,
    start_balance: Money,
    profit_target: Money | None,
    max_best_day_pct: Decimal | None,
    trading_date_of: Callable[[int], date],
    preset: str | None = None,
    halted: HaltAtEnd | None = None,
) -> CombineEvaluation:
    """Evaluate a run against the Combine's pass and fail criteria (see the module docstring).

    Args:
        days: the run's trading days, oldest first (:attr:`RiskEngine.day_closes` plus
            :meth:`RiskEngine.day_so_far` for the day open at the end).
        breaches: every :class:`RuleBreached` of the run, in order.
        start_balance: the account's starting balance, USD.
        profit_target: the preset's ``account_profit_target`` (``None``: the run cannot pass).
        max_best_day_pct: the R16 limit as a fraction (``None``: consistency not required).
        trading_date_of: the trading date of a UTC ns instant (``TradingCalendar.trading_date``).
        preset: the preset's name, for the report.
        halted: the account's halt in force at the end of the run (``None``: not HALTED).

    Returns:
        The :class:`CombineEvaluation`.
    """
    failure: Failure | None = None
    for b in breaches:
        if _is_failure(b):
            failure = Failure(
                rule_id=b.decision.rule_id,
                reason=b.decision.reason,
                ts_ns=b.ts_ns,
                trading_date=trading_date_of(b.ts_ns),
            )
            break
    passed_on: date | None = None
    target_on: date | None = None
    end = len(days)
    for i, day in enumerate(days):
        if failure is not None and day.trading_date >= failure.trading_date:
            end = i + 1
            break
        if profit_target is None:
            continue
        reached = day.balance.cents - start_balance.cents >= profit_target.cents
        if reached and target_on is None:
            target_on = day.trading_date
        if reached:
            _total, _best, share = _share(days[: i + 1])
            if max_best_day_pct is None or (share is not None and share < max_best_day_pct):
                passed_on = day.trading_date
                end = i + 1
                break
    window = days[:end]
    total, best, share = _share(window)
    status: EvaluationStatus = "passed" if passed_on is not None else "failed" if failure is not None else "in_progress"
    consistency: bool | None = None
    if max_best_day_pct is not None and share is not None:
        consistency = share < max_best_day_pct
    ev = CombineEvaluation(
        status=status,
        preset=preset,
        start_balance=start_balance,
        profit_target=profit_target,
        max_best_day_pct=max_best_day_pct,
        failure=failure if status == "failed" else None,
        passed_on=passed_on,
        target_reached_on=target_on,
        days_traded=sum(1 for d in window if d.trades > 0),
        total_profit=total,
        best_day=best,
        best_day_share=None if share is None else float(share),
        consistency_ok=consistency,
        days=tuple(days),
        halted=halted if status == "in_progress" else None,
    )
    return dataclasses.replace(ev, reasons=verdict_reasons(ev, share))


def _pct(x: Decimal | float) -> str:
    """A fraction as a whole percentage with thousands separators: ``32.57`` -> ``3,257 %``."""
    return f"{Decimal(str(x)) * 100:,.0f} %"


def verdict_reasons(ev: CombineEvaluation, share: Decimal | None = None) -> tuple[str, ...]:
    """Why ``ev`` passed, failed or cannot pass yet, one sentence each, in the trader's words (figures in USD, times
    in CT, percentages whole): see the module docstring for examples. ``share`` is the exact best-day share (default:
    ``ev.best_day_share``)."""
    if ev.failure is not None:
        f = ev.failure
        return (f"failed on {f.trading_date.isoformat()} by {f.rule_id}: {f.reason}",)
    pct = ev.max_best_day_pct
    if share is None and ev.best_day_share is not None:
        share = Decimal(str(ev.best_day_share))
    if ev.status == "passed" and ev.passed_on is not None:
        text = f"passed on {ev.passed_on.isoformat()}: the balance reached the profit target"
        if ev.profit_target is not None:
            text += f" {fmt_usd(ev.profit_target)}"
        if pct is not None and share is not None:
            text += f" with the best day at {_pct(share)} of total profit (the rule allows {_pct(pct)})"
        return (text,)
    out: list[str] = []
    h = ev.halted
    # a halt that lifts (flat time, a personal daily loss until the next session) is no reason the run cannot pass:
    # the trading state timeline shows it
    if h is not None and h.permanent:
        assert h.mll_floor is not None and h.buffer is not None
        locked = "locked " if h.floor_locked else ""
        out.append(
            f"halted since {fmt_ct(h.since_ns)}: equity {fmt_usd(h.equity)} is within the {fmt_usd(h.buffer)} "
            f"buffer above the {locked}MLL floor {fmt_usd(h.mll_floor)}; no new trade can pass"
        )
    if ev.profit_target is None:
        out.append("the preset has no profit target, so the run cannot pass")
    elif ev.target_reached_on is None:
        level = Money(ev.start_balance.cents + ev.profit_target.cents)
        last = ev.days[-1].balance if ev.days else ev.start_balance
        short = Money(level.cents - last.cents)
        out.append(
            f"profit target not reached: balance {fmt_usd(last)} is {fmt_usd(short)} short of {fmt_usd(level)} "
            f"(start + {fmt_usd(ev.profit_target)})"
        )
    if pct is not None and ev.consistency_ok is not True:
        if ev.best_day is not None and share is not None:
            day, pnl = ev.best_day
            reached = f" (the target was reached on {ev.target_reached_on.isoformat()})" if ev.target_reached_on else ""
            out.append(
                f"consistency{reached}: best day {day.isoformat()} {fmt_usd(pnl)} is {_pct(share)} of total profit "
                f"{fmt_usd(ev.total_profit)}; the rule allows {_pct(pct)}"
            )
        elif ev.days_traded:
            out.append(
                f"consistency: total profit {fmt_usd(ev.total_profit)} is not positive, so no best day can be below "
                f"{_pct(pct)} of it"
            )
    if not out:
        out.append("in progress: neither passed nor failed by the end of the data")
    return tuple(out)


# ------------------------------------------------------------------------------------------------ backtest wiring


def backtest_risk_setup(config: RiskConfig, *, root: str, bar_ns: int, balance: Money) -> RiskSetup:
    """The risk setup of a bar backtest or replay (:class:`~propdesk.node.builder.RiskSetup`): a new account (the MLL
    floor is known from the start balance), no stale-quote watchdog (bars are the feed), QUOTE rules on each bar close
    of a held contract, and the guard's periodic check run from the bars every ``bar_ns`` (see
    :mod:`propdesk.risk.engine`). Its lockouts are kept in memory (:func:`propdesk.node.builder.lockout_store_for`:
    the clock is historical).

    Args:
        config: the risk configuration.
        root: the traded product (its flat time is timed too).
        bar_ns: the bars' duration, UTC ns (the periodic check's interval).
        balance: the account's balance at the start, USD (differs from ``config.start_balance`` when the backtest
            is given another ``--balance``).
    """
    return RiskSetup(config=config, new_account=True, balance=balance, roots=(root,), bar_ns=bar_ns)


def backtest_risk_engine(config: RiskConfig, *, root: str, bar_ns: int, balance: Money) -> RiskEngine:
    """The risk engine of :func:`backtest_risk_setup`, with its lockouts in memory (for a node built without
    :class:`~propdesk.node.builder.NodeBuilder`)."""
    return backtest_risk_setup(config, root=root, bar_ns=bar_ns, balance=balance).engine(MemoryLockoutStore())


def evaluation_of(engine: RiskEngine) -> CombineEvaluation:
    """:func:`evaluate_combine` over a finished run of ``engine`` (its closed days, the day still open, its breaches,
    the preset's target and R16 limit).

    Raises:
        ConfigError: the engine was never attached to a node.
    """
    cfg = engine.config
    r16 = cfg.rule("R16")
    pct = r16.params.get("max_best_day_pct") if r16 is not None else None
    days = [*engine.day_closes, engine.day_so_far()]
    return evaluate_combine(
        days,
        engine.breaches,
        start_balance=cfg.start_balance,
        profit_target=cfg.account_profit_target,
        max_best_day_pct=None if pct is None else Decimal(str(pct)),
        trading_date_of=engine.calendar.trading_date,
        preset=cfg.preset,
        halted=halt_at_end(engine),
    )


def halt_at_end(engine: RiskEngine) -> HaltAtEnd | None:
    """The HALTED stretch in force at the end of ``engine``'s run (:meth:`RiskOutcomes.final_halt`) with the account's
    equity, MLL floor and R1 buffer, or ``None`` when the account is not HALTED."""
    halt: Halt | None = engine.outcomes.final_halt()
    if halt is None:
        return None
    state = engine.state
    r1 = engine.config.rule("R1")
    buffer = lock = None
    if r1 is not None:
        raw = r1.params.get("trigger_buffer_usd")
        buffer = raw if isinstance(raw, Money) else None if raw is None else Money.of(str(raw))
        lock = bool(r1.params.get("lock_at_start", True))
    floor = state.mll_floor
    start = engine.config.start_balance
    return HaltAtEnd(
        since_ns=halt.start_ns,
        rule_id=halt.rule_id,
        reason=halt.reason,
        equity=state.equity,
        mll_floor=floor,
        buffer=buffer,
        floor_locked=bool(lock) and floor is not None and floor.cents >= start.cents,
    )


def risk_summary(engine: RiskEngine) -> dict[str, Any]:
    """What the risk engine did in a run, JSON-ready: ``preset``, ``state`` at the end, ``orders_denied`` /
    ``orders_allowed`` by the gate, ``breaches`` (count) and ``breach_rules`` (count per rule id), ``lockouts`` (one
    entry per lockout set: ``rule_id``, ``reason``, ``set_at_ns``, ``expires_at_ns``), ``flattens`` (verified
    flattens), ``session_rolls``, ``outcomes`` (:meth:`RiskOutcomes.to_json_dict`: the trading state timeline, the
    lockouts with renewals merged, the denials by rule, the flattens with their fills, the halts)."""
    per_rule: dict[str, int] = {}
    for b in engine.breaches:
        per_rule[b.rule_id] = per_rule.get(b.rule_id, 0) + 1
    return {
        "preset": engine.config.preset,
        "state": engine.trading_state.name,
        "orders_allowed": engine.gate.allowed,
        "orders_denied": engine.gate.denied,
        "breaches": len(engine.breaches),
        "breach_rules": per_rule,
        "lockouts": [
            {
                "rule_id": e.lockout.rule_id,
                "reason": e.lockout.reason,
                "set_at_ns": e.lockout.set_at_ns,
                "expires_at_ns": e.lockout.expires_at_ns,
            }
            for e in engine.lockouts_set
        ],
        "flattens": len(engine.flattens),
        "session_rolls": len(engine.rolls),
        "outcomes": engine.outcomes.to_json_dict(),
    }
