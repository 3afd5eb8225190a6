"""The MLL floor of an existing account from the broker's own trade history, when neither the journal nor the risk
configuration gives it (issue 12 part 6; ``../shared/specs/risk-rules.md`` section 3.4 "Seeding").

Used by ``propdesk run --broker projectx`` (:class:`propdesk.sessions.live.LiveSession`) and ``propdesk risk --broker
projectx`` (:class:`propdesk.sessions.risk_daemon.session.ProjectXRiskSession`) after the first reconcile (today's fills
are then counted by the account state) and before the account guard is told the state is reconciled:

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

**The start of a live account's risk engine** is one sequence for both commands: :class:`ConnectFills` counts the
fills the bus carries while the broker connects and the node first reconciles (the broker's replay of the day, the
reconciler's missing fills) into the engine's account state, as they arrive, without the account guard judging them:
they happened while propdesk was not watching (a position opened before the start is the account's state, not an
order "opened while REDUCING"). :func:`start_after_first_reconcile` then derives the MLL floor (or takes the broker's
balance), starts the engine and lifts the guard's connection condition after a clean reconcile (else holds the
account REDUCING). From then on the guard judges every fill.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from propdesk.core import topics
from propdesk.model.events import OrderFilled
from propdesk.model.price import Money
from propdesk.model.records import AuditEntry
from propdesk.model.reports import AccountReport, FillReport
from propdesk.risk.audit import safe_record
from propdesk.risk.engine import VIEW_PRIORITY
from propdesk.risk.history_bootstrap import DerivedHistory, HistoryUnavailableError, apply_history, derive_history

if TYPE_CHECKING:
    from propdesk.core.bus import MessageBus, Subscription
    from propdesk.risk.engine import RiskEngine
    from propdesk.storage.journal import Journal

__all__ = [
    "HISTORY_SOURCE",
    "BootstrapResult",
    "ConnectFills",
    "TradeHistorySource",
    "bootstrap_from_broker",
    "fetch_fill_history",
    "start_after_first_reconcile",
    "sync_broker_balance",
]

log = logging.getLogger("propdesk.node.bootstrap")

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
    skew_ns: int = 3_600_000_000_000,
) -> tuple[list[FillReport], Money, int, int]:
    """Every fill of the account back to its first trade (module docstring, step 1).

    The first request reaches ``skew_ns`` (UTC ns, one hour by default) past ``now_ns``: a fill the broker stamps a
    little after the local clock (clock skew) is still part of the account's history.

    Returns:
        ``(fills oldest first, the broker's balance, requests made, days searched)``.

    Raises:
        Whatever ``source`` raises (the caller turns it into :class:`HistoryUnavailableError`).
    """
    balance = (await source.account_report()).balance
    by_id: dict[str, FillReport] = {}
    window = max(1, window_days) * _DAY_NS
    end = now_ns + max(0, skew_ns)
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
    # the broker's clock may run a little ahead of ours: its latest fill is part of "now"
    as_of_ns = max(now_ns, fills[-1].ts_ns) if fills else now_ns
    history = derive_history(
        fills, start_balance=cfg.start_balance, calendar=risk.calendar, now_ns=as_of_ns, mll=cfg.mll
    )
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


class ConnectFills:
    """Counts the fills of ``risk``'s account that ``bus`` carries from now until :meth:`close`: the broker's replay
    at connect and the first reconcile's (module docstring). Each fill goes into the engine's account state as it
    arrives (after the position manager has booked it, as the running engine's own handler does), so the day's
    figures and round trips are the broker's, each fill once; the account guard, not started yet, does not judge
    them.

    Create it before the broker connects; :func:`start_after_first_reconcile` closes it.

    Args:
        risk: the attached risk engine, not started (its own fill handler is not subscribed yet).
        bus: the node's bus.

    Attributes:
        fills: the fills counted, in arrival order.
    """

    def __init__(self, risk: RiskEngine, bus: MessageBus) -> None:
        self.fills: list[OrderFilled] = []
        self._risk = risk
        self._bus = bus
        self._sub: Subscription | None = bus.subscribe(topics.ORDER_FILLED, self._on_fill, VIEW_PRIORITY)

    def _on_fill(self, fill: OrderFilled) -> None:
        if self._risk.state.on_fill(fill):
            self.fills.append(fill)

    def close(self) -> list[OrderFilled]:
        """Stop counting (idempotent); returns :attr:`fills`."""
        if self._sub is not None:
            self._bus.unsubscribe(self._sub)
            self._sub = None
        return self.fills


async def start_after_first_reconcile(
    risk: RiskEngine,
    source: TradeHistorySource | None,
    counted: ConnectFills,
    *,
    reconciled: bool,
    now_ns: Callable[[], int],
    journal: Journal | None = None,
    before_start: Callable[[BootstrapResult | None, list[OrderFilled]], None] | None = None,
) -> BootstrapResult | None:
    """Start a live account's risk engine once the node has connected and reconciled (module docstring): stop
    counting the connect's fills, derive the MLL floor from the broker's trade history while it is unknown
    (:func:`bootstrap_from_broker`) or else take the broker's balance (:func:`sync_broker_balance`), call
    ``before_start`` (e.g. journal the seeded account state), start the engine, then lift the guard's connection
    condition when the reconcile was clean (``reconciled``: every rule is evaluated on the reconciled state) or hold
    the account REDUCING until a later clean reconcile.

    Args:
        risk: the attached risk engine, not started.
        source: the broker (:class:`TradeHistorySource`), or ``None`` for a broker without a trade history (the
            floor must be known then; the account state keeps its balance).
        counted: the :class:`ConnectFills` created before the broker connected.
        reconciled: the first reconcile was clean.
        now_ns: the node's clock, UTC ns.
        journal: the node's journal, for the derived end-of-day balances (see :func:`bootstrap_from_broker`).
        before_start: called with the bootstrap's result and the fills counted, before the engine starts.

    Returns:
        The derived history, or ``None`` when the floor was known (the journal, the configuration, a new account).

    Raises:
        HistoryUnavailableError: the floor is unknown and cannot be derived (the engine is not started).
        CalendarError: from :meth:`RiskEngine.start`.
    """
    fills = counted.close()
    result: BootstrapResult | None = None
    if source is None:
        if risk.config.mll is not None and risk.state.mll_floor is None:
            raise HistoryUnavailableError("the broker gives no trade history")
    else:
        result = await bootstrap_from_broker(risk, source, now_ns=now_ns(), journal=journal)
        if result is None:
            await sync_broker_balance(risk, source)
    if before_start is not None:
        before_start(result, fills)
    risk.start()
    if reconciled:
        risk.guard.reconciled()
    else:  # fail closed: reduce-only until a later reconcile is clean
        from propdesk.node.recovery import hold_until_reconciled  # noqa: PLC0415 - the journal's flow: storage

        hold_until_reconciled(risk, ts_ns=now_ns())
    return result
