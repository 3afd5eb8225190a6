"""The risk engine: one object that wires the account state, the rules, the pre-trade gate, the enforcer, the account
guard, the session timers, the lockout store and the audit log of one account into a trading node.

Built from a :class:`~propdesk.risk.presets.RiskConfig` (a firm preset plus the trader's personal rules) and the
node's parts (bus, clock, position manager, order manager). The gate must exist before the order manager (every
order passes it), so the engine is attached in two steps::

    engine = RiskEngine(load_risk_config("topstep-50k-combine", None), new_account=True)
    node = TradingNode(clock=clock, broker=broker, risk=engine.attach)  # attach(node) -> the gate
    engine.start()      # the enforcer, the guard and the timers; loads the lockouts (call before trading)
    node.start()

:meth:`RiskEngine.attach` builds the account state, the rule set and the gate (the gate denies everything until the
guard is bound: fail closed); :meth:`RiskEngine.start` builds the enforcer and the guard, in that order, and starts
them (``../shared/specs/risk-rules.md`` section 7; ARCHITECTURE.md, "A fill that breaks a rule").

Bus wiring (priorities: the position manager applies fills and marks at 100 first):

====================================  ========  ============================================================
topic                                 priority  handler
====================================  ========  ============================================================
``events.order.filled``               50        :meth:`AccountState.on_fill` (balance, day PnL, counters)
``events.session.rolled``             50        :meth:`AccountState.on_session_rolled` (the view rolls first)
``data.quotes.**``, ``data.trades.**`` 50       marks of a held contract -> :meth:`AccountState.on_mark`
``data.bars.**`` (``bar_marks``)      50        marks of a held contract, then the guard's QUOTE evaluation
``events.order.filled`` and the rest  0         :class:`~propdesk.risk.guard.AccountGuard`
``events.risk.*``                     -200      the engine's breach / lockout / flatten tallies
====================================  ========  ============================================================

Bars as the price feed: in a bar backtest or a bar replay there are no quotes, so with ``bar_marks`` (the default)
each bar close of a held contract is a QUOTE evaluation point (R1, R2, R3, R4, R12 see the bar's close as the mark).
The cost when flat is one dictionary lookup per bar.

The trading day: :class:`~propdesk.risk.calendar.SessionTimers` fires at each session boundary (17:00 CT, Sunday
17:00 CT after a Friday, the reopen after a holiday) and publishes :class:`~propdesk.risk.calendar.SessionRolled` on
``events.session.rolled`` (the account state rolls its day, then the guard re-evaluates every rule); at the firm's
flat time (R11: 15:05 CT by default, the early close minus the buffer) and the entry cutoff it publishes
:class:`~propdesk.risk.calendar.FlatTimeReached` / :class:`~propdesk.risk.calendar.EntryCutoffReached` and has the
guard evaluate the CLOCK rules (R11 then flattens and locks out until the next session open). On a
:class:`~propdesk.core.clock.SimClock` these timers fire on the replayed timeline.

The guard's periodic check (CLOCK rules, stale quotes, held decisions): a clock timer every ``check_interval_s``.
With ``clock_from_bars`` (backtests) the guard's own timer runs once a day of replayed time; instead the check runs
on the first bar at least ``check_interval_s`` after the previous check, and only when it can matter: the rule set
has a time-driven CLOCK rule (R9 cooldown, R10 session windows, R13 stop required, R6; not R1, whose CLOCK point is
the rollover, nor R11, driven by the session timers, nor R16, which only warns), and the account holds a position,
has a working order, a held decision, or is REDUCING. A flat account has nothing for a CLOCK rule to enforce, the PRE
rules still check every order, and a HALTED one waits for its lockout's expiry alert.

Bar paths as marks: a bar is known only at its close, but its price went through the open, the extreme nearer the
open, the other extreme and the close (the simulated exchange's matching path, :mod:`propdesk.brokers.sim.matching`).
Wired to a simulated exchange with ``SimBroker.set_path_listener(engine.on_path_mark)`` (backtests, ``run
--replay``, ``propdesk risk --broker sim``), the engine marks a held contract at each of those points in path order
and runs the QUOTE evaluation there. Between two points the path is continuous: before the exchange walks a segment
it asks :meth:`RiskEngine.path_breach_tick` for the first price on it at which the rules would flatten (found by
bisection on a what-if mark) and stops there, as it stops at a stop order's price. So an MLL or daily-loss breach
inside a bar is enforced where the path crossed the limit (at the open when the bar gapped through it): the
enforcer's close goes to the exchange while its last price is that point, and fills there (plus the configured
slippage), not at the bar's close.

QUOTE evaluations on bars are skipped when nothing they read changed (the held quantity, day net and equity are the
same as at the previous bar): the QUOTE rules (R1-R4, R12) read money only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Final, Protocol

from propdesk.core import topics
from propdesk.core.bus import MessageBus, Subscription
from propdesk.core.clock import Clock
from propdesk.core.errors import ConfigError
from propdesk.core.timefmt import iso_utc_seconds
from propdesk.core.topics import Priority
from propdesk.execution.positions import PositionManager
from propdesk.model.calendar import CalendarError, TradingCalendar, default_calendar
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money
from propdesk.risk.audit import AuditLog, RingAuditLog
from propdesk.risk.calendar import EntryCutoffReached, FirmSchedule, FlatTimeReached, SessionRolled, SessionTimers
from propdesk.risk.decisions import Action, Decision, EvalPoint, TradingState
from propdesk.risk.enforcer import Enforcer
from propdesk.risk.events import AccountFlattened, LockoutSet, RuleBreached
from propdesk.risk.gate import RiskGate
from propdesk.risk.guard import AccountGuard
from propdesk.risk.lockouts import JsonFileLockoutStore, LockoutStore, MemoryLockoutStore
from propdesk.risk.outcomes import RiskOutcomes
from propdesk.risk.presets import RiskConfig
from propdesk.risk.rules.base import Rule, RuleSet
from propdesk.risk.rules.hedging import HedgeBook
from propdesk.risk.state import AccountState

if TYPE_CHECKING:
    from propdesk.execution.order_manager import OrderManager

__all__ = ["CachedSchedule", "DayClose", "NodeParts", "RiskEngine"]

log = logging.getLogger("propdesk.risk.engine")

VIEW_PRIORITY: Final[int] = Priority.RISK_VIEW
"""Bus priority of the account state's handlers: after the position manager (100), before the guard (0)."""
_TIMED_ELSEWHERE: Final[frozenset[str]] = frozenset({"R1", "R11", "R16"})
"""CLOCK rules a bar-driven periodic check can skip: R1's CLOCK point is the floor at rollover (the roll re-evaluates
every rule), R11 is driven by the session timers, R16 only warns (and is evaluated on fills)."""
TALLY_PRIORITY: Final[int] = Priority.RISK_TALLY
"""Bus priority of the engine's own tallies of risk events (after everyone)."""


class NodeParts(Protocol):
    """What the engine needs of a trading node (``propdesk.node.TradingNode`` has it). ``orders`` is read only from
    :meth:`RiskEngine.start` on (it does not exist yet when :meth:`RiskEngine.attach` is called)."""

    @property
    def bus(self) -> MessageBus: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def positions(self) -> PositionManager: ...
    @property
    def account_id(self) -> AccountId: ...
    @property
    def orders(self) -> OrderManager: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DayClose:
    """One trading day of the account as it closed (recorded at the session roll, before the day's figures reset).

    Attributes:
        trading_date: the trading date.
        net_pnl: realized PnL of the day net of fees, USD (risk-rules.md section 3.2).
        balance: the realized balance at the roll (the end-of-day balance the MLL trails), USD.
        mll_floor: the MLL floor in force at the day's close (``None`` without an MLL or while unknown), USD.
        trades: fill rows of the day (section 3.5); contracts: contracts filled.
        complete: ``False`` for the day still open (:meth:`RiskEngine.day_so_far`).
    """

    trading_date: date
    net_pnl: Money
    balance: Money
    mll_floor: Money | None
    trades: int
    contracts: int
    complete: bool = True


class CachedSchedule(FirmSchedule):
    """A :class:`~propdesk.risk.calendar.FirmSchedule` that remembers each ``(trading date, product)`` flat deadline:
    R11 asks for it on every CLOCK and PRE evaluation, and computing it from the calendar costs tens of
    microseconds (time zone arithmetic), a dictionary lookup once cached. The calendar is immutable, so the cache
    never goes stale; it grows by one entry per trading date and product."""

    __slots__ = ("_deadlines",)

    def __init__(self, calendar: TradingCalendar, **kwargs: Any) -> None:
        super().__init__(calendar, **kwargs)
        self._deadlines: dict[tuple[date, str | None], int] = {}

    def flat_deadline_ns(self, d: date, product: str | None = None) -> int:
        """As :meth:`FirmSchedule.flat_deadline_ns`, cached."""
        key = (d, product)
        at = self._deadlines.get(key)
        if at is None:
            at = self._deadlines[key] = super().flat_deadline_ns(d, product)
        return at


def _iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return iso_utc_seconds(ts_ns)


def _usd(m: Money | None) -> str | None:
    return None if m is None else str(m.as_decimal())


class RiskEngine:
    """The risk engine of one account (see the module docstring).

    Args:
        config: the validated risk configuration (:func:`~propdesk.risk.presets.load_risk_config`).
        calendar: the trading calendar (default: :func:`~propdesk.model.calendar.default_calendar`).
        store: the lockout store (default: in memory; see ``lockout_path``). The journal's SQL store implements the
            same :class:`~propdesk.risk.lockouts.LockoutStore` protocol.
        lockout_path: a JSON file for a :class:`~propdesk.risk.lockouts.JsonFileLockoutStore` (when ``store`` is
            not given).
        audit: the audit log (default: a :class:`~propdesk.risk.audit.RingAuditLog` of the last 10,000 entries).
        new_account: the account starts now at the configuration's start balance (the MLL floor is then known;
            backtests and simulated runs). Otherwise the floor must come from the configuration's ``mll_floor``,
            :meth:`AccountState.seed` or the journal, and the account stays REDUCING until it does.
        balance: the current realized balance when it differs from the start balance (USD).
        flat_buffer_min / entry_cutoff_min: minutes before the flat deadline (15:10 CT) at which the account is
            flattened (default 5: 15:05 CT) and from which opening orders are denied (default 10); risk-rules.md R11.
        roots: the products traded (their own flat times are timed: early-close products); the R11 reference
            product is always included.
        quote_stale_s: a held contract with no quote for this long puts the account in REDUCING (5 s); ``None``
            turns the watchdog off (a bar feed, where a quiet minute is not a stale feed).
        check_interval_s: the guard's periodic check (CLOCK rules), seconds (1 s).
        clock_from_bars: run the periodic check from bar closes instead of a clock timer (backtests: see the module
            docstring).
        bar_marks: evaluate the QUOTE rules on each bar close of a held contract (bars are the price feed).
        hedge_book: the trader's other accounts (required by R14 ``no_hedging``).

    Raises:
        ConfigError: a bad option (a negative minute count, a non-positive interval).
    """

    def __init__(
        self,
        config: RiskConfig,
        *,
        calendar: TradingCalendar | None = None,
        store: LockoutStore | None = None,
        lockout_path: str | None = None,
        audit: AuditLog | None = None,
        new_account: bool = False,
        balance: Money | None = None,
        flat_buffer_min: int = 5,
        entry_cutoff_min: int = 10,
        roots: Sequence[str] = (),
        quote_stale_s: float | None = 5.0,
        check_interval_s: float = 1.0,
        clock_from_bars: bool = False,
        bar_marks: bool = True,
        hedge_book: HedgeBook | None = None,
    ) -> None:
        if check_interval_s <= 0 or (quote_stale_s is not None and quote_stale_s <= 0):
            raise ConfigError(f"check_interval_s ({check_interval_s}) and quote_stale_s must be > 0")
        self.config = config
        self.calendar = calendar if calendar is not None else default_calendar()
        self.schedule: FirmSchedule = CachedSchedule(
            self.calendar, flat_buffer_min=flat_buffer_min, entry_cutoff_min=entry_cutoff_min
        )
        if store is None:
            store = JsonFileLockoutStore(lockout_path) if lockout_path is not None else MemoryLockoutStore()
        self.store: LockoutStore = store
        self.audit: AuditLog = audit if audit is not None else RingAuditLog()
        self._new_account = new_account
        self._balance = balance
        r11 = config.rule("R11")
        reference = str(r11.params.get("reference_product", "ES")) if r11 is not None else "ES"
        self.roots: tuple[str, ...] = tuple(sorted({reference, *roots}))
        self._quote_stale_s = quote_stale_s
        self._interval_ns = int(check_interval_s * 1e9)
        self._check_interval_s = check_interval_s
        self._clock_from_bars = clock_from_bars
        self._bar_marks = bar_marks
        self._hedge_book = hedge_book

        self._node: NodeParts | None = None
        self._state: AccountState | None = None
        self._rules: RuleSet | None = None
        self._gate: RiskGate | None = None
        self._enforcer: Enforcer | None = None
        self._guard: AccountGuard | None = None
        self._timers: SessionTimers | None = None
        self._subs: list[Subscription] = []
        self._last_check_ns = 0
        self._last_quote_key: tuple[int, int, int] | None = None
        self._timed_rules = False
        self.running = False
        self.breaches: list[RuleBreached] = []
        """Every :class:`RuleBreached` published so far, in order."""
        self.lockouts_set: list[LockoutSet] = []
        """Every :class:`LockoutSet` published so far, in order."""
        self.flattens: list[AccountFlattened] = []
        """Every :class:`AccountFlattened` published so far, in order."""
        self.rolls: list[SessionRolled] = []
        """Every session roll fired so far, in order."""
        self.day_closes: list[DayClose] = []
        """Every trading day closed so far (at its session roll), oldest first."""
        self.outcomes = RiskOutcomes()
        """What the engine did, for every view: the trading state timeline, lockouts, denied orders by rule,
        flattens (:class:`~propdesk.risk.outcomes.RiskOutcomes`; recording from :meth:`start`)."""

    # ------------------------------------------------------------------------------------------------ wiring

    def attach(self, node: NodeParts) -> RiskGate:
        """The :class:`~propdesk.node.TradingNode` ``risk`` hook: build the account state, the rule set and the
        pre-trade gate on ``node``'s bus, clock and position manager, before the node builds its order manager.

        Returns:
            The gate (the node hands it to its order manager). It denies every order until :meth:`start`.

        Raises:
            ConfigError: attached twice, or a rule or the account state cannot be built from the configuration.
        """
        if self._node is not None:
            raise ConfigError("the risk engine is already attached to a node")
        self._node = node
        self.outcomes.account_id = node.account_id
        cfg = self.config

        def working_orders() -> list[Any]:
            return node.orders.open_orders()

        def bracket_stop_ticks(cid: ClientOrderId) -> int | None:
            b = node.orders.bracket(cid)
            return None if b is None else b.stop_loss_ticks

        clock = node.clock
        self._state = cfg.make_state(
            node.account_id,
            positions=node.positions,
            working_orders=working_orders,
            calendar=self.calendar,
            clock=clock.timestamp_ns,
            new_account=self._new_account,
            balance=self._balance,
            bracket_stop_ticks=bracket_stop_ticks,
        )
        self._rules = cfg.build_rules(schedule=self.schedule, hedge_book=self._hedge_book)
        self._gate = RiskGate(self._rules, self._state, clock, account_id=node.account_id, audit=self.audit)
        return self._gate

    def start(self) -> None:
        """Build the enforcer and the guard (binding itself to the gate and the enforcer), subscribe the account
        state, arm the session timers and start the guard (loads the lockouts: a restart keeps them). Call after
        the node is built and before it trades. Idempotent.

        Raises:
            ConfigError: not attached to a node.
            CalendarError: the calendar does not cover the clock's time.
        """
        if self.running:
            return
        node, state, rules, gate = self._node, self._state, self._rules, self._gate
        if node is None or state is None or rules is None or gate is None:
            raise ConfigError("the risk engine is not attached: pass engine.attach as TradingNode(risk=...)")
        bus, clock = node.bus, node.clock
        if self._enforcer is None:
            self._enforcer = Enforcer(
                bus, clock, node.orders, positions=node.positions, store=self.store, audit=self.audit, gate=gate
            )
        if self._guard is None:
            stale = self._quote_stale_s
            self._guard = AccountGuard(
                bus,
                clock,
                rules,
                state,
                self._enforcer,
                account_id=node.account_id,
                store=self.store,
                audit=self.audit,
                gate=gate,
                quote_stale_s=stale if stale is not None else 1.0,
                # a day of bar time: the engine runs the check from bars (clock_from_bars)
                check_interval_s=86_400.0 if self._clock_from_bars else self._check_interval_s,
                in_session=self._in_session if stale is not None else _never,
            )
        self._subs = [
            bus.subscribe(topics.ORDER_FILLED, state.on_fill, VIEW_PRIORITY),
            bus.subscribe(topics.SESSION_ROLLED, state.on_session_rolled, VIEW_PRIORITY),
            bus.subscribe(topics.ALL_QUOTES, self._on_tick, VIEW_PRIORITY),
            bus.subscribe(topics.ALL_TRADES, self._on_tick, VIEW_PRIORITY),
            bus.subscribe(RuleBreached.TOPIC, self.breaches.append, TALLY_PRIORITY),
            bus.subscribe(LockoutSet.TOPIC, self.lockouts_set.append, TALLY_PRIORITY),
            bus.subscribe(AccountFlattened.TOPIC, self.flattens.append, TALLY_PRIORITY),
        ]
        if self._bar_marks:
            self._subs.append(bus.subscribe(topics.ALL_BARS, self._on_bar, VIEW_PRIORITY))
        self.outcomes.subscribe(bus)
        self._timers = SessionTimers(
            clock,
            self.calendar,
            self.schedule,
            self._on_roll,
            on_flatten=self._on_flat_time,
            on_entry_cutoff=self._on_entry_cutoff,
            roots=self.roots,
            on_error=self._on_calendar_error,
            name=f"risk.session.{node.account_id}",
        )
        self._last_check_ns = clock.timestamp_ns()
        self._last_quote_key = None
        self._timed_rules = any(EvalPoint.CLOCK in r.points and r.rule_id not in _TIMED_ELSEWHERE for r in rules.rules)
        self._guard.start()
        self._timers.start()
        self.running = True

    def stop(self) -> None:
        """Stop the timers and the guard, unsubscribe, and stop the enforcer's pending jobs (shutdown)."""
        if self._timers is not None:
            self._timers.stop()
        if self._guard is not None:
            self._guard.stop()
        if self._enforcer is not None:
            self._enforcer.cancel_jobs()
        if self._node is not None:
            for sub in self._subs:
                self._node.bus.unsubscribe(sub)
            self.outcomes.unsubscribe(self._node.bus)
        self._subs = []
        self.running = False

    # ------------------------------------------------------------------------------------------------ parts

    @property
    def state(self) -> AccountState:
        """The account state (the rules' view).

        Raises:
            ConfigError: not attached yet.
        """
        if self._state is None:
            raise ConfigError("the risk engine is not attached to a node yet")
        return self._state

    @property
    def rules(self) -> RuleSet:
        """The account's rule set. Raises ConfigError when not attached."""
        if self._rules is None:
            raise ConfigError("the risk engine is not attached to a node yet")
        return self._rules

    @property
    def gate(self) -> RiskGate:
        """The pre-trade gate. Raises ConfigError when not attached."""
        if self._gate is None:
            raise ConfigError("the risk engine is not attached to a node yet")
        return self._gate

    @property
    def guard(self) -> AccountGuard:
        """The account guard. Raises ConfigError before :meth:`start`."""
        if self._guard is None:
            raise ConfigError("the risk engine is not started yet")
        return self._guard

    @property
    def enforcer(self) -> Enforcer:
        """The enforcer. Raises ConfigError before :meth:`start`."""
        if self._enforcer is None:
            raise ConfigError("the risk engine is not started yet")
        return self._enforcer

    @property
    def timers(self) -> SessionTimers | None:
        """The session timers (``None`` before :meth:`start`)."""
        return self._timers

    @property
    def trading_state(self) -> TradingState:
        """ACTIVE, REDUCING or HALTED (HALTED until the guard runs: fail closed)."""
        return TradingState.HALTED if self._guard is None else self._guard.state

    # ------------------------------------------------------------------------------------------------ handlers

    def _in_session(self, ts_ns: int) -> bool:
        try:
            return any(self.calendar.is_open(ts_ns, root) for root in self.roots)
        except CalendarError:
            return True  # outside the calendar: count the time (fail closed)

    def _on_tick(self, msg: Any) -> None:
        node = self._node
        if node is not None and node.positions.net_qty(node.account_id, msg.symbol):
            self.state.on_mark()

    def on_path_mark(self, symbol: str, price: float, ts_ns: int) -> None:
        """A point of a bar's price path (a :data:`propdesk.brokers.sim.broker.PathListener`): mark ``symbol`` at
        ``price`` (points, on the tick) as its last trade at ``ts_ns`` (UTC ns) and, when the account holds it, run
        the QUOTE evaluation as on a bar close (module docstring, "Bar paths as marks")."""
        node = self._node
        if node is None or self._guard is None or not self.running:
            return
        positions = node.positions
        held = positions.net_qty(node.account_id, symbol)
        if held:
            positions.update_trade(symbol, price, ts_ns)
            self._quote_point(_PathPoint(symbol, price, ts_ns), held)

    def path_breach_tick(self, symbol: str, a_ticks: int, b_ticks: int, tick: float) -> int | None:
        """The first price (whole ticks) on the continuous path from ``a_ticks`` (the previous point, already
        marked) to ``b_ticks`` at which the QUOTE rules would ask for something the guard does not hold yet at
        CLOSE_POSITION or above (an MLL or daily-loss breach: flatten, lockout), or ``None`` when ``b_ticks`` itself
        asks for nothing new. ``tick`` is the tick size (points).

        A what-if: the mark and the account's figures are restored afterwards. The rules' verdict is taken to be
        monotonic along a one-way segment (money only moves one way there), so the first such price is found by
        bisection in O(log(|b - a|)) evaluations. The simulated exchange uses it to stop its bar walk at that price
        (:meth:`propdesk.brokers.sim.broker.SimBroker.set_path_listener`), as it stops at a stop order's price.
        """
        node, guard, rules = self._node, self._guard, self._rules
        if node is None or guard is None or rules is None or not self.running or a_ticks == b_ticks:
            return None
        positions = node.positions
        if not positions.net_qty(node.account_id, symbol):
            return None
        state = self.state
        held = guard.decisions
        saved = state.save_marks()
        ts = node.clock.timestamp_ns()

        def breaches(p: int) -> bool:
            positions.update_trade(symbol, p * tick, ts)
            state.on_mark()
            for d in rules.evaluate(state, EvalPoint.QUOTE).decisions:
                if d.action >= Action.CLOSE_POSITION:
                    prev = held.get(d.rule_id)
                    if prev is None or prev.action < d.action:
                        return True
            return False

        try:
            if not breaches(b_ticks):
                return None
            lo, hi = a_ticks, b_ticks  # breaches(hi); not at lo (the guard evaluated it and holds what it asks)
            while abs(hi - lo) > 1:
                mid = (lo + hi) // 2
                if breaches(mid):
                    hi = mid
                else:
                    lo = mid
            return hi
        finally:
            positions.update_trade(symbol, a_ticks * tick, ts)
            state.restore_marks(saved)

    def _quote_point(self, mark: Any, held: int) -> None:
        """The held contract of ``mark`` (anything with a ``symbol``) was marked: recompute the account's money and
        run the QUOTE evaluation when it changed."""
        guard = self._guard
        assert guard is not None
        state = self.state
        state.on_mark()
        key = (held, state.day_net.cents, state.equity.cents)
        # QUOTE rules read money only: an unchanged mark needs no evaluation (unless the watchdog counts quotes)
        if key != self._last_quote_key or self._quote_stale_s is not None:
            self._last_quote_key = key
            guard.on_quote(mark)

    def _on_bar(self, bar: Any) -> None:
        node = self._node
        guard = self._guard
        if node is None or guard is None:
            return
        held = node.positions.net_qty(node.account_id, bar.symbol)
        if held:
            self._quote_point(bar, held)
        else:
            self._last_quote_key = None
        if self._clock_from_bars and self._timed_rules:
            now = node.clock.timestamp_ns()
            if now - self._last_check_ns >= self._interval_ns:
                self._last_check_ns = now
                if held or guard.decisions or node.orders.open_orders() or guard.state is TradingState.REDUCING:
                    guard.on_timer(None)  # type: ignore[arg-type]  # the guard ignores the event

    def day_so_far(self, *, complete: bool = False) -> DayClose:
        """The current trading day's figures now, as a :class:`DayClose` (``complete=False`` by default).

        Raises:
            ConfigError: not attached yet.
        """
        s = self.state
        return DayClose(
            trading_date=s.trading_date,
            net_pnl=s.day_realized_net,
            balance=s.balance,
            mll_floor=s.mll_floor,
            trades=s.trades_today,
            contracts=s.contracts_today,
            complete=complete,
        )

    def _on_roll(self, event: SessionRolled) -> None:
        self.rolls.append(event)
        state = self._state
        if state is not None and state.trading_date == event.ended_trading_date:
            self.day_closes.append(self.day_so_far(complete=True))
        node = self._node
        if node is not None:
            node.bus.publish(event.topic, event)

    def _on_flat_time(self, event: FlatTimeReached) -> None:
        node = self._node
        if node is not None:
            node.bus.publish(event.topic, event)
        if self._guard is not None:
            self._guard.evaluate(EvalPoint.CLOCK, trigger={"flat_time": _iso(event.ts_ns), "roots": list(event.roots)})

    def _on_entry_cutoff(self, event: EntryCutoffReached) -> None:
        node = self._node
        if node is not None:
            node.bus.publish(event.topic, event)
        if self._guard is not None:
            self._guard.evaluate(EvalPoint.CLOCK, trigger={"entry_cutoff": _iso(event.ts_ns)})

    def _on_calendar_error(self, exc: CalendarError) -> None:
        # The calendar ended: R11 cannot compute its flat time any more and fails closed (REDUCE_ONLY).
        log.critical("risk: the trading calendar cannot give the next session boundary: %s", exc)
        if self._guard is not None and self._guard.running:
            self._guard.evaluate(EvalPoint.CLOCK, trigger={"calendar_error": str(exc)})

    # ------------------------------------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """A JSON-ready dict for displays (``propdesk risk``, the API).

        Keys: ``account``, ``preset``, ``state`` (ACTIVE / REDUCING / HALTED), ``reasons``, ``trading_date``,
        ``next_reset_ns`` / ``next_reset_utc`` (the next session roll: day lockouts and counters reset),
        ``next_flat_ns`` / ``next_flat_utc`` (the next R11 flatten), ``balance_usd``, ``equity_usd``,
        ``day_net_usd``, ``mll_floor_usd``, ``daily_loss_left_usd`` / ``daily_loss_rule`` (USD left today before the
        tightest daily loss limit, R2 or R3, and its rule id; ``None`` without one), ``trades_today``,
        ``contracts_today``, ``rules`` (one entry per rule:
        ``rule_id``, ``firm``, ``describe``, ``action`` (the guard's held decision, else the rule's verdict now),
        ``reason``, ``used_fraction`` (the fraction of the limit used where the rule has one, else ``None``)),
        ``lockouts`` (:meth:`Lockout.to_dict` each), ``conditions`` (fail-closed conditions).

        Raises:
            ConfigError: not attached yet.
        """
        state = self.state
        guard = self._guard
        held = guard.decisions if guard is not None else {}
        rules_out: list[dict[str, Any]] = []
        for rule in self.rules.rules:
            decision = held.get(rule.rule_id) or _peek(rule, state)
            rules_out.append(
                {
                    "rule_id": rule.rule_id,
                    "firm": rule.firm,
                    "describe": _safe_describe(rule),
                    "action": decision.action.name if decision is not None else None,
                    "reason": decision.reason if decision is not None else "",
                    "used_fraction": _used_fraction(rule, state, decision),
                }
            )
        timers = self._timers
        next_reset = timers.next_ns("roll") if timers is not None else None
        if next_reset is None:
            next_reset = state.next_day_start_ns
        next_flat = timers.next_ns("flatten") if timers is not None else None
        left, left_rule = _daily_loss_left(self.rules.rules, state)
        return {
            "account": int(state.account_id),
            "preset": self.config.preset,
            "state": self.trading_state.name,
            "reasons": list(guard.state_reasons) if guard is not None else ["risk guard not running"],
            "trading_date": state.trading_date.isoformat(),
            "next_reset_ns": next_reset,
            "next_reset_utc": _iso(next_reset),
            "next_flat_ns": next_flat,
            "next_flat_utc": _iso(next_flat),
            "balance_usd": _usd(state.balance),
            "equity_usd": _usd(state.equity),
            "day_net_usd": _usd(state.day_net),
            "mll_floor_usd": _usd(state.mll_floor),
            "daily_loss_left_usd": _usd(left),
            "daily_loss_rule": left_rule,
            "trades_today": state.trades_today,
            "contracts_today": state.contracts_today,
            "rules": rules_out,
            "lockouts": [lo.to_dict() for lo in guard.lockouts] if guard is not None else [],
            "conditions": guard.conditions if guard is not None else {},
        }


def _daily_loss_left(rules: Sequence[Rule], view: AccountState) -> tuple[Money | None, str | None]:
    """USD left today before the tightest daily loss limit (R2 firm, R3 personal: ``amount`` + the day's net, never
    below zero) and that rule's id; ``(None, None)`` without such a rule."""
    best: tuple[Money, str] | None = None
    for rule in rules:
        amount = getattr(rule.params, "amount", None) if rule.rule_id in ("R2", "R3") else None
        if not isinstance(amount, Money):
            continue
        left = Money(max(0, amount.cents + view.day_net.cents))
        if best is None or left.cents < best[0].cents:
            best = (left, rule.rule_id)
    return (None, None) if best is None else best


@dataclass(frozen=True, slots=True)
class _PathPoint:
    """A point of a bar's path, as the guard's QUOTE evaluation takes it (it reads the ``symbol``)."""

    symbol: str
    price: float
    ts_ns: int


def _never(_ts_ns: int) -> bool:
    return False


def _safe_describe(rule: Rule) -> str:
    try:
        return rule.describe()
    except Exception as exc:  # a display must not fail on one rule
        return f"{rule.rule_id} (describe failed: {type(exc).__name__})"


def _peek(rule: Rule, view: AccountState) -> Decision | None:
    """The rule's verdict now at its first post-trade point (read only: nothing acts on it)."""
    for point in (EvalPoint.QUOTE, EvalPoint.FILL, EvalPoint.CLOCK):
        if point in rule.points:
            try:
                return rule.evaluate(view, point)
            except Exception as exc:
                return Decision(rule_id=rule.rule_id, action=Action.REDUCE_ONLY, reason=f"rule failed: {exc}")
    return None


def _frac(used: int, limit: int) -> float | None:
    return None if limit <= 0 else max(0.0, used / limit)


def _used_fraction(rule: Rule, view: AccountState, decision: Decision | None) -> float | None:
    """The fraction of the rule's limit used now, for the rules with a numeric limit (R1 MLL distance, R2/R3 day
    loss, R4 day profit, R5 exposure, R8 trades, R15 contracts); else the decision's own fraction."""
    p: Any = rule.params
    try:
        rid = rule.rule_id
        if rid == "R1":
            floor = view.mll_floor
            if floor is None:
                return None
            amount = p.amount.cents
            return _frac(amount - (view.equity.cents - floor.cents), amount)
        if rid in ("R2", "R3") and getattr(p, "amount", None) is not None:
            return _frac(-view.day_net.cents, p.amount.cents)
        if rid == "R4":
            return _frac(view.day_net.cents, p.target.cents)
        if rid == "R5":
            return float(view.exposure_minis(count_working_orders=p.count_working_orders) / p.limit)
        if rid == "R8" and p.max_per_day is not None:
            return _frac(view.trades_today, p.max_per_day)
        if rid == "R15":
            return _frac(view.contracts_today, p.block)
    except Exception:  # a display must not fail on one rule
        return None
    return decision.used_fraction if decision is not None else None
