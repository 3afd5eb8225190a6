"""The MLL floor of an existing account from the broker's own trade history, when neither the journal nor the risk
configuration gives it (issue 12 part 6; ``../shared/specs/risk-rules.md`` section 3.4 "Seeding").

Used by ``propdesk run --broker projectx`` (:class:`propdesk.live.LiveSession`) and ``propdesk risk --broker
projectx`` (:class:`propdesk.daemon.session.ProjectXRiskSession`) after the first reconcile (today's fills are then
counted by the account state) and before the account guard is told the state is reconciled:

1. :func:`fetch_fill_history` pages the broker's fills backwards from now in windows of ``window_days`` (one
   ``Trade/search`` each on ProjectX) until the fills found explain the broker's balance (start balance + their net
   PnL = the balance) and a whole window before them is empty (the account's first trade is behind), or until
   ``max_days``;
2. :func:`~propdesk.risk.history_bootstrap.derive_history` rebuilds the end-of-day balances and the trailing MLL
   floor; the balance check refuses a history that does not explain the balance;
3. :func:`~propdesk.risk.history_bootstrap.apply_history` seeds the account state; the journal (when there is one)
   records the derived end-of-day balances, so the next start finds them there, and an audit entry that names their
   source (``broker_history``). The caller journals the seeded account state (``LiveSession`` does: an account
   snapshot ``manual`` / ``broker_history``).

An account whose floor the journal or the configuration gives takes the broker's balance instead
(:func:`sync_broker_balance`): the balance the account state was built with predates the fills the first reconcile
counts.

When it is impossible (no answer from the trades endpoint, an account older than the history the broker returns, an
MLL that trails intraday equity) :func:`bootstrap_from_broker` raises
:class:`~propdesk.risk.history_bootstrap.HistoryUnavailableError`, one line naming the ``[account] mll_floor``
setting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from propdesk.model.price import Money
from propdesk.model.reports import AccountReport, FillReport
from propdesk.risk.audit import AuditEntry, safe_record
from propdesk.risk.history_bootstrap import DerivedHistory, HistoryUnavailableError, apply_history, derive_history

if TYPE_CHECKING:
    from propdesk.risk.engine import RiskEngine
    from propdesk.storage.journal import Journal

__all__ = [
    "HISTORY_SOURCE",
    "BootstrapResult",
    "TradeHistorySource",
    "bootstrap_from_broker",
    "fetch_fill_history",
    "sync_broker_balance",
]

log = logging.getLogger("propdesk.bootstrap_flow")

_DAY_NS: Final[int] = 86_400 * 1_000_000_000
HISTORY_SOURCE: Final[str] = "broker_history"
"""The source named in the audit entry of a bootstrap (``inputs["source"]``)."""


class TradeHistorySource(Protocol):
    """What the bootstrap needs of a broker (``ProjectXBroker`` has it).

    ``trade_history(start_ns, end_ns)``: the account's non-voided fills in ``[start_ns, end_ns]`` (UTC ns), one
    request; ``account_report()``: the account with its current balance (USD).
    """

    async def trade_history(self, start_ns: int, end_ns: int) -> Sequence[FillReport]: ...
    async def account_report(self) -> AccountReport: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapResult:
    """What :func:`bootstrap_from_broker` derived and seeded.

    Attributes:
        history: the derived history (EOD balances, floor, today's figures).
        broker_balance: the broker's balance the history was checked against, USD.
        requests: trade-history requests made; days_searched: how far back they reached (days).
    """

    history: DerivedHistory
    broker_balance: Money
    requests: int
    days_searched: int

    def describe(self) -> str:
        """One line for the log and the console."""
        h = self.history
        first = "no trade yet" if not h.days else f"{len(h.days)} closed days since {h.days[0].trading_date}"
        return (
            f"MLL floor {h.mll_floor} derived from the broker's trade history ({h.fills} fills, {first}; "
            f"EOD high {h.mll_peak}, balance at today's open {h.sod_balance})"
        )


async def sync_broker_balance(risk: RiskEngine, source: TradeHistorySource) -> Money | None:
    """Take the broker's balance as the account state's realized balance (the state keeps the day's realized PnL,
    so its start-of-day balance becomes ``balance - day realized``): for an account whose floor the journal or
    the configuration gave, after the first reconcile (today's fills are counted). The balance the state was
    built with may predate those fills, so counting them would count them twice.

    Returns:
        The broker's balance (USD), or ``None`` when it could not be read (logged; the state is unchanged).
    """
    try:
        balance = (await source.account_report()).balance
    except Exception as exc:
        log.error("account %s: the broker's balance could not be read (%s)", risk.state.account_id, exc)
        return None
    state = risk.state
    if balance != state.balance:
        log.info("account %s: balance %s taken from the broker (was %s)", state.account_id, balance, state.balance)
        state.seed(balance=balance)
    return balance


async def fetch_fill_history(
    source: TradeHistorySource,
    *,
    now_ns: int,
    start_balance: Money,
    window_days: int = 30,
    max_days: int = 730,
) -> tuple[list[FillReport], Money, int, int]:
    """Every fill of the account back to its first trade (module docstring, step 1).

    Returns:
        ``(fills oldest first, the broker's balance, requests made, days searched)``.

    Raises:
        Whatever ``source`` raises (the caller turns it into :class:`HistoryUnavailableError`).
    """
    balance = (await source.account_report()).balance
    by_id: dict[str, FillReport] = {}
    window = max(1, window_days) * _DAY_NS
    end = now_ns
    requests = 0
    while end > now_ns - max_days * _DAY_NS:
        start = max(end - window, now_ns - max_days * _DAY_NS)
        got = await source.trade_history(start, end)
        requests += 1
        fresh = [f for f in got if f.trade_id not in by_id]
        for f in fresh:
            by_id[f.trade_id] = f
        end = start
        explained = start_balance.cents + sum(
            (0 if f.realized_pnl is None else f.realized_pnl.cents) - f.fee.cents for f in by_id.values()
        )
        if not fresh and explained == balance.cents:
            break
    fills = sorted(by_id.values(), key=lambda f: (f.ts_ns, f.trade_id))
    return fills, balance, requests, (now_ns - end) // _DAY_NS


async def bootstrap_from_broker(
    risk: RiskEngine,
    source: TradeHistorySource,
    *,
    now_ns: int,
    journal: Journal | None = None,
    window_days: int = 30,
    max_days: int = 730,
) -> BootstrapResult | None:
    """Derive the MLL floor from ``source``'s fills and seed ``risk``'s account state with it (module docstring).

    Does nothing (returns ``None``) when the floor is already known (journal, ``[account] mll_floor``, a new
    account) or the configuration has no MLL.

    Args:
        risk: the attached risk engine; its state has counted today's fills (call after the first reconcile).
        source: the broker (:class:`TradeHistorySource`).
        now_ns: now, UTC ns.
        journal: the node's journal: records the derived EOD balances and an audit entry (``broker_history``).
        window_days / max_days: days per request and the furthest look-back.

    Raises:
        HistoryUnavailableError: the trades endpoint did not answer, the history does not explain the balance (an
            account older than the broker's history), or the MLL trails intraday equity.
    """
    state = risk.state
    cfg = risk.config
    if cfg.mll is None or state.mll_floor is not None:
        return None
    try:
        fills, balance, requests, days = await fetch_fill_history(
            source, now_ns=now_ns, start_balance=cfg.start_balance, window_days=window_days, max_days=max_days
        )
    except Exception as exc:
        raise HistoryUnavailableError(
            f"the broker's trade history could not be read ({type(exc).__name__}: {exc})".replace("\n", " ")
        ) from None
    history = derive_history(fills, start_balance=cfg.start_balance, calendar=risk.calendar, now_ns=now_ns, mll=cfg.mll)
    history.check_balance(balance)
    if history.day_realized_net != state.day_realized_net:
        log.warning(
            "bootstrap: today's realized net from the trade history (%s, %d fills) differs from the account state's "
            "(%s, %d fills); the state's is kept",
            history.day_realized_net,
            history.trades_today,
            state.day_realized_net,
            state.trades_today,
        )
    apply_history(state, history)
    result = BootstrapResult(history=history, broker_balance=balance, requests=requests, days_searched=days)
    log.info("account %s: %s", state.account_id, result.describe())
    entry = AuditEntry(
        ts_ns=now_ns,
        account=state.account_id,
        point="store",
        action="SEED",
        state="",
        reasons=(result.describe(),),
        inputs={
            "source": HISTORY_SOURCE,
            "mll_floor_usd": None if history.mll_floor is None else str(history.mll_floor.as_decimal()),
            "mll_peak_usd": None if history.mll_peak is None else str(history.mll_peak.as_decimal()),
            "sod_balance_usd": str(history.sod_balance.as_decimal()),
            "eod_balances": [[d.isoformat(), str(m.as_decimal())] for d, m in history.eod_balances],
            "fills": history.fills,
        },
    )
    safe_record(risk.audit, entry)
    if journal is not None:
        for d, m in history.eod_balances:
            journal.record_eod_balance(int(state.account_id), d, m, now_ns)
        journal.record(entry)
    return result
