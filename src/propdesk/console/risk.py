"""Rich views of what the risk engine did (:class:`~propdesk.risk.outcomes.RiskOutcomes`) and of the Combine
evaluation's verdict (:class:`~propdesk.backtest.evaluation.CombineEvaluation`), shared by the end-of-run summaries of
``propdesk backtest`` and ``propdesk run`` and by the live console's risk panel.

* :func:`risk_outcome_tables`: the trading state timeline (routine stretches of the same rule, e.g. the daily R11
  flat-time halt, folded into one row with their count), the lockouts by rule, the orders denied by rule, the
  flattens that closed positions (fills with their tags as given) and the evaluation's reasons in words;
* :func:`risk_panel`: the live panel (trading state, MLL floor and the distance to it, daily loss left, next reset
  in CT) that fits 80 columns.

Times are America/Chicago wall time (the firm's clock), minutes: ``2025-09-17 13:33``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from propdesk.core.timefmt import ct_datetime
from propdesk.risk.outcomes import Halt, RiskOutcomes, plain_reason

if TYPE_CHECKING:
    from propdesk.backtest.evaluation import CombineEvaluation

__all__ = ["evaluation_lines", "fold_halts", "risk_outcome_tables", "risk_panel"]

_STATE_STYLE: Final = {"ACTIVE": "green", "REDUCING": "yellow", "HALTED": "bold red"}


def _ct(ts_ns: int | None, *, end: str = "-") -> str:
    if ts_ns is None:
        return end
    return ct_datetime(ts_ns).strftime("%Y-%m-%d %H:%M")


def fold_halts(halts: Sequence[Halt]) -> list[tuple[Halt, Halt, int]]:
    """Consecutive closed stretches of the same state and rule folded: ``(first, last, count)`` each, in order. A
    stretch still in force (``end_ns`` ``None``) is never folded into the ones before it."""
    out: list[tuple[Halt, Halt, int]] = []
    for h in halts:
        if out:
            first, last, n = out[-1]
            if last.end_ns is not None and h.end_ns is not None and (h.state, h.rule_id) == (last.state, last.rule_id):
                out[-1] = (first, h, n + 1)
                continue
        out.append((h, h, 1))
    return out


def _table(title: str, *columns: str) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def _row(t: Table, *cells: str | Text) -> None:
    """Add a row of plain text (a ``[tag]`` is not Rich markup)."""
    t.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells))


def _timeline(outcomes: RiskOutcomes) -> Table:
    t = _table("risk: trading state timeline (CT)", "from", "to", "state", "rule", "why")
    for first, last, n in fold_halts(outcomes.halts(("HALTED", "REDUCING"))):
        state = Text(first.state if n == 1 else f"{first.state} x{n}", style=_STATE_STYLE.get(first.state, ""))
        why = plain_reason(first.reason) if n == 1 else f"{n} times, first: {plain_reason(first.reason)}"
        _row(t, _ct(first.start_ns), _ct(last.end_ns, end="end of data"), state, first.rule_id or "-", why)
    if not t.row_count:
        _row(t, "-", "-", Text("ACTIVE", style="green"), "-", "never halted")
    return t


def _lockouts(outcomes: RiskOutcomes, end_ns: int | None) -> Table:
    t = _table("risk: lockouts by rule (CT)", "rule", "set", "first", "last lifted", "latest reason")
    by_rule: dict[str, list[Any]] = {}
    for span in outcomes.lockouts:
        by_rule.setdefault(span.rule_id, []).append(span)
    for rule, spans in by_rule.items():
        n = sum(s.count for s in spans)
        last = spans[-1]
        if last.expires_at_ns is None:
            lifted = "never (failed)"
        elif end_ns is not None and last.expires_at_ns > end_ns:
            lifted = "in force at the end"
        else:
            lifted = _ct(last.expires_at_ns)
        _row(t, rule, f"{n:,}", _ct(spans[0].start_ns), lifted, plain_reason(last.reason))
    return t


def _denials(outcomes: RiskOutcomes) -> Table:
    t = _table(f"risk: orders denied ({outcomes.denied:,}) by rule", "rule", "orders", "first", "last", "example")
    for tally in sorted(outcomes.denials.values(), key=lambda d: -d.count):
        example = plain_reason(tally.examples[0][1]) if tally.examples else ""
        _row(t, tally.rule_id, f"{tally.count:,}", _ct(tally.first_ns), _ct(tally.last_ns), example)
    return t


def _flattens(outcomes: RiskOutcomes) -> RenderableType:
    closing = outcomes.flattens_with_fills()
    idle = len(outcomes.flattens) - len(closing)
    if not closing:
        return Text(f"risk: flattens: {len(outcomes.flattens):,}, each found the account flat (nothing to close)")
    t = _table(
        f"risk: flattens ({len(outcomes.flattens):,}; {idle:,} found the account flat)",
        "when",
        "rule",
        "closed (fill, tag)",
        "why",
    )
    for f in closing:
        closed = ", ".join(f"{x.side} {x.qty} {x.symbol} @ {x.price} [{x.tag}]" for x in f.fills)
        why = plain_reason(f.reason).removeprefix(f"{f.rule_id}: ") if f.rule_id else plain_reason(f.reason)
        _row(t, _ct(f.ts_ns), f.rule_id or "-", closed, why)
    return t


def evaluation_lines(ev: CombineEvaluation) -> list[Text]:
    """The evaluation's verdict as lines: a headline (``evaluation (preset): in progress, cannot pass``) and one
    ``- reason`` line per reason (plain text, so a narrow terminal wraps a sentence without splitting it)."""
    status = ev.status.replace("_", " ")
    if ev.status == "in_progress" and ev.halted is not None and ev.halted.permanent:
        status += ", cannot pass"
    style = {"passed": "bold green", "failed": "bold red"}.get(ev.status, "bold yellow")
    head = Text.assemble(f"evaluation ({ev.preset or 'personal rules'}): ", (status, style))
    head.append(f"; days traded {ev.days_traded}")
    return [head, *(Text(f"- {r}") for r in ev.reasons)]


def risk_outcome_tables(
    outcomes: RiskOutcomes | None, evaluation: CombineEvaluation | None = None, *, end_ns: int | None = None
) -> Group:
    """The summary's risk section: timeline, lockouts, denials, flattens (each only when there is something to show
    beyond the timeline) and the evaluation's verdict. ``end_ns`` (UTC ns) is the end of the run: a lockout whose
    expiry lies beyond it is shown as in force at the end."""
    parts: list[RenderableType] = []
    if outcomes is not None:
        parts.append(_timeline(outcomes))
        if outcomes.lockouts:
            parts.append(_lockouts(outcomes, end_ns))
        if outcomes.denials:
            parts.append(_denials(outcomes))
        if outcomes.flattens:
            parts.append(_flattens(outcomes))
    if evaluation is not None:
        parts.extend(evaluation_lines(evaluation))
    return Group(*parts)


def _usd(value: str | Decimal | None) -> str:
    if value is None:
        return "-"
    d = Decimal(str(value))
    return f"-${-d:,.2f}" if d < 0 else f"${d:,.2f}"


def risk_panel(status: Mapping[str, Any]) -> Table:
    """The live console's risk panel from :meth:`RiskEngine.status` (``state``, ``reasons``, ``equity_usd``,
    ``mll_floor_usd``, ``day_net_usd``, ``next_reset_ns``, ``rules``): the trading state and why, the MLL floor and
    the equity's distance to it (USD), the daily loss left before the tightest daily loss limit
    (``daily_loss_left_usd``, ``daily_loss_rule``) and the next reset in CT. At most 78 characters wide, so it fits
    80 columns inside a panel border."""
    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim", no_wrap=True)
    t.add_column(overflow="fold", max_width=62)
    state = str(status.get("state", "?"))
    reasons = [plain_reason(r) for r in status.get("reasons", ())]
    _row(t, "state", Text(state, style=_STATE_STYLE.get(state, "")))
    if reasons:
        _row(t, "why", "; ".join(reasons))
    floor, equity = status.get("mll_floor_usd"), status.get("equity_usd")
    if floor is not None and equity is not None:
        dist = Decimal(str(equity)) - Decimal(str(floor))
        _row(t, "MLL floor", f"{_usd(floor)} (equity {_usd(equity)}, {_usd(dist)} above)")
    else:
        _row(t, "MLL floor", "-")
    _row(t, "daily loss left", _daily_left(status))
    reset = status.get("next_reset_ns")
    _row(t, "next reset", "-" if reset is None else f"{_ct(int(reset))} CT")
    return t


def _daily_left(status: Mapping[str, Any]) -> str:
    left = status.get("daily_loss_left_usd")
    if left is None:
        return "no daily loss limit"
    rule = status.get("daily_loss_rule") or ""
    return f"{_usd(left)} ({rule})" if rule else _usd(left)
