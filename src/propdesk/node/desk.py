"""The ``Desk``: the one facade every interface (dashboard, API, webhooks, bridge, CLI) drives a node through.

**Commands** (:mod:`propdesk.model.commands`: typed, frozen, each with an idempotency key) go in through
:meth:`Desk.execute` and return a :class:`~propdesk.model.commands.CommandResult` at once: accepted, or denied with
a :class:`~propdesk.model.commands.Verdict` naming the rule (``R5``), the trading state (``HALTED``, ``REDUCING``) or
the desk's reason (``invalid``, ``idempotency_conflict``, ``admin_required``, ``version_conflict``, ``not_live``,
``strategy``, ``unsupported``), the reason and the headroom left. Outcomes (order accepted, fills, positions, state
changes) arrive as events on the node's bus, never as return values.

* Order commands go through the node's order manager, whose pre-trade gate (the risk engine's
  :class:`~propdesk.risk.gate.RiskGate`, with the journal's back-pressure gate in front when the journal is behind)
  gives the verdict; the desk reads it from the order (``DENIED`` with the gate's reason) and never checks rules
  itself. A dry run (``SubmitOrder(dry_run=True)`` or :meth:`Desk.dry_run`) asks the same gate through
  :meth:`OrderManager.pre_check <propdesk.execution.order_manager.OrderManager.pre_check>` about an order that is
  not registered and not sent (its bracket's stop visible to the rules), and adds the USD at risk to the stop
  (qty x ticks to the stop x tick value) as a share of the daily-loss and MLL headroom.
* Cancels, cancel-all, close and flatten are broker commands (they never pass the gate: risk-rules.md 7.1).
* ``SetTradingState`` holds the account guard's ``desk`` condition (towards more restrictive always; lifting it needs
  ``admin=True``, and lifts only the desk's own restriction).
* Strategy life cycle: ``StartStrategy`` / ``PauseStrategy`` / ``StopStrategy`` (modes: leave, cancel, flatten) and
  ``UpdateStrategyParams`` (validated by the strategy's ``config_cls``; only live-changeable fields unless stopped;
  the expected version must be the current one). A paused strategy's entries and a stopped strategy's orders are
  held in front of the gate (:meth:`OrderManager.hold_tag <propdesk.execution.order_manager.OrderManager.hold_tag>`):
  they are DENIED with the reason; bracket children and exits of a paused strategy pass.

**Idempotency.** The first result of each key is kept: the same key with the same content (every field but ``ts_ns``,
compared as the SHA-256 digest of its canonical JSON) returns that result again (``replayed=True``) and does
nothing; the same key with another content is denied as ``idempotency_conflict``. A key is at most 128 characters.
Without a journal the results are kept for the desk's lifetime (in memory). With a journal each key's first result is
also journaled (the ``command_results`` table, through the journal's write path:
:mod:`propdesk.storage.command_results`), and :meth:`Desk.start` loads the account's stored results, so a command
retried after a restart gets the same answer; until :meth:`Desk.start` has run, such a desk denies every command
(``invalid``: it cannot yet tell a retry from a new command).

**Queries** return frozen values (money as :class:`~propdesk.model.price.Money`, times UTC ns): :meth:`accounts`,
:meth:`positions`, :meth:`working_orders` (with bracket children), :meth:`fills`, :meth:`round_trips` (and
:meth:`open_round_trips`), :meth:`daily_stats`, :meth:`strategy_stats`, :meth:`risk_status`, :meth:`strategies`,
:meth:`contracts`, :meth:`audit`, and (async, from the journal's bar cache) :meth:`bars`. :meth:`snapshot` takes the
state at once with the event stream's ``as_of_seq``. For the consoles and session summaries: :meth:`pnl`,
:meth:`all_positions`, :meth:`order`, :meth:`trading_day`, :meth:`risk_outcomes` (their values in
:mod:`propdesk.node.desk_views`).

**Event stream and snapshot.** The sequenced event stream (:class:`propdesk.node.stream.EventStream`: journal
sequence numbers, ``subscribe(topics, after_seq)``) is attached with :meth:`Desk.attach_stream` and reached as
:attr:`Desk.stream`. :meth:`Desk.snapshot` takes the stream's ``sequence_point()`` and the state in one synchronous
call on the core's thread (no event is dispatched in between), so a consumer that takes a snapshot and then
``subscribe(..., after_seq=snapshot.as_of_seq)`` merges both with no event counted twice and none missed (an order
event carries what changed - status, fill, new quantity or prices - not a new order's details: a consumer reads an
order it first meets in the stream from the journal's ``orders`` table). The desk
publishes its strategy events on the bus (:data:`STRATEGY_STATE_TOPIC`, :data:`STRATEGY_PARAMS_TOPIC`) like every
other event.

Everything runs on the core's thread (synchronous, between two events): an interface on an event loop calls the desk
there. Source: ARCHITECTURE.md ("A command from outside", "The event stream").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from propdesk.core import topics
from propdesk.core.errors import ConfigError, PropdeskError
from propdesk.core.topics import Priority
from propdesk.execution.round_trips import OpenRoundTrip, RoundTrip, RoundTripBuilder
from propdesk.model.commands import (
    ACCEPTED,
    ADMIN_REQUIRED,
    IDEMPOTENCY_CONFLICT,
    INVALID,
    NOT_LIVE,
    VERSION_CONFLICT,
    CancelAllOrders,
    CancelOrder,
    ClosePosition,
    Command,
    CommandResult,
    FlattenAccount,
    ModifyOrder,
    PauseStrategy,
    RiskAtStop,
    SetTradingState,
    StartStrategy,
    StopMode,
    StopStrategy,
    StrategyState,
    SubmitOrder,
    UpdateStrategyParams,
    Verdict,
)
from propdesk.model.contracts import ContractSpec
from propdesk.model.data import Bar, Timeframe
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.orders import Order, OrderStatus, OrderType
from propdesk.model.positions import PositionSnapshot
from propdesk.model.price import Money, Price
from propdesk.model.records import AuditEntry, Lockout
from propdesk.node.desk_views import PnlTotals, TradingDay
from propdesk.risk.decisions import TradingState
from propdesk.risk.gate import reduce_only_violation
from propdesk.risk.rules.consistency import best_day_share
from propdesk.storage.cache import BarCache, BarSource
from propdesk.storage.command_results import (
    MAX_KEY_LENGTH,
    StoredResult,
    command_digest,
    command_result_row,
    load_command_results,
)
from propdesk.storage.db import create_engine_for
from propdesk.storage.repositories import Repository
from propdesk.strategies.base import Strategy, StrategyConfig, live_fields

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from propdesk.execution.portfolio import StrategySummary
    from propdesk.model.data import Timeframe
    from propdesk.node.builder import BuiltNode
    from propdesk.node.stream import EventStream
    from propdesk.risk.engine import DayClose, RiskEngine
    from propdesk.risk.outcomes import RiskOutcomes

__all__ = [
    "DESK_CONDITION",
    "STRATEGY_HOLD",
    "STRATEGY_PARAMS_TOPIC",
    "STRATEGY_STATE_TOPIC",
    "UNSUPPORTED",
    "AccountSummary",
    "Desk",
    "DeskSnapshot",
    "OrderView",
    "RuleStatus",
    "StrategyParamsChanged",
    "StrategyStateChanged",
    "StrategyView",
]

log = logging.getLogger("propdesk.node.desk")

DESK_CONDITION: Final[str] = "desk"
"""The account guard's condition key under which ``SetTradingState`` holds its restriction."""
STRATEGY_STATE_TOPIC: Final[str] = topics.STRATEGY_STATE
"""Where :class:`StrategyStateChanged` is published."""
STRATEGY_PARAMS_TOPIC: Final[str] = topics.STRATEGY_PARAMS
"""Where :class:`StrategyParamsChanged` is published."""
UNSUPPORTED: Final[str] = "unsupported"
"""The ``rule_id`` of a denial: the broker lacks the order type (refused before the gate; a broker's own rejection
of a sent order is an outcome, an ``OrderRejected`` event, not a denial)."""
STRATEGY_HOLD: Final[str] = "strategy"
"""The ``rule_id`` of a denial by a paused or stopped strategy's hold."""


# ------------------------------------------------------------------------------------------------ events and views


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyStateChanged:
    """A strategy's life-cycle state changed (``ts_ns`` UTC ns; ``mode`` for a stop)."""

    tag: str
    state: StrategyState
    previous: StrategyState
    ts_ns: int
    mode: StopMode | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyParamsChanged:
    """A strategy's parameters changed to ``version`` (``changed``: the new values of the fields that changed)."""

    tag: str
    version: int
    changed: tuple[tuple[str, object], ...]
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSummary:
    """One account now (USD amounts as :class:`Money`; ``None`` where the node has no risk engine to know it).

    Attributes:
        account_id: the account. balance_usd: realized balance. equity_usd: balance + unrealized PnL.
        day_realized_net_usd: today's realized PnL net of fees. unrealized_usd: open PnL at the marks.
        day_net_usd: realized net + unrealized.
        mll_floor_usd / mll_distance_usd: the maximum loss limit's floor and equity above it.
        daily_loss_left_usd / daily_loss_rule: USD left today before the tightest daily loss limit (R2/R3) and its id.
        consistency_share: best day's net PnL / total profit over the closed days and today so far (risk-rules.md R16;
            the same figure as the Combine evaluation, :func:`propdesk.risk.rules.consistency.best_day_share`);
            ``None`` when the total is not positive or without a risk engine.
        consistency_limit: R16's ``max_best_day_pct`` (the share must stay below it), ``None`` without R16.
        trades_today: fills counted as trades today (risk engine's count). trading_state: ACTIVE / REDUCING / HALTED.
        state_reasons: why, most restrictive first. lockouts: the active lockouts. connected: the broker is connected.
        ts_ns: the node's clock when read (UTC ns).
    """

    account_id: int
    balance_usd: Money
    equity_usd: Money
    day_realized_net_usd: Money
    unrealized_usd: Money
    day_net_usd: Money
    mll_floor_usd: Money | None
    mll_distance_usd: Money | None
    daily_loss_left_usd: Money | None
    daily_loss_rule: str | None
    consistency_share: Decimal | None
    consistency_limit: Decimal | None
    trades_today: int
    trading_state: str
    state_reasons: tuple[str, ...]
    lockouts: tuple[Lockout, ...]
    connected: bool
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderView:
    """A frozen copy of an order (prices in points, quantities in contracts, ``children`` its open bracket children)."""

    client_order_id: ClientOrderId
    symbol: str
    side: str
    order_type: str
    qty: int
    filled_qty: int
    limit_price: Price | None
    stop_price: Price | None
    status: str
    tag: str
    parent_id: ClientOrderId | None
    children: tuple[OrderView, ...] = ()

    @classmethod
    def of(cls, order: Order, children: tuple[OrderView, ...] = ()) -> OrderView:
        """The view of ``order`` now."""
        return cls(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side.name,
            order_type=order.order_type.value,
            qty=order.qty,
            filled_qty=order.filled_qty,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            status=order.status.value,
            tag=order.tag,
            parent_id=order.parent_id,
            children=children,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleStatus:
    """One rule now.

    Attributes:
        rule_id, firm, describe: the rule. state: the action of its held (else current) decision (``ALLOW``, ``WARN``,
        ``DENY``, ``REDUCE_ONLY`` ...). reason: that decision's reason. used_fraction: the share of its limit used.
        value / limit / headroom: the rule's figure now, its limit and what is left (USD for R1 (equity above the
        floor; the limit is the MLL amount), R2/R3 (today's loss); mini-equivalent contracts for R5), else ``None``.
        last_decision: the gate's last decision on an order (``ALLOW`` / ``DENY`` and its reasons), for every rule.
    """

    rule_id: str
    firm: bool
    describe: str
    state: str
    reason: str
    used_fraction: float | None
    value: Decimal | None
    limit: Decimal | None
    headroom: Decimal | None
    last_decision: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyView:
    """A strategy on the desk: its tag, name, symbol, state, parameters (``params``: the configuration's fields),
    parameter ``version`` (starts at 1) and the fields that may change while it runs (``live``)."""

    tag: str
    name: str
    symbol: str
    state: StrategyState
    params: dict[str, Any]
    version: int
    live: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskSnapshot:
    """The desk's state at one instant (:meth:`Desk.snapshot`).

    Attributes:
        as_of_seq: the event stream's sequence point taken at the same instant: the state reflects exactly the
            journaled events up to it; continue it with ``stream.subscribe(topics, after_seq=as_of_seq)``. ``None``
            when no stream is attached (then the snapshot cannot be merged with a stream).
        ts_ns: the node's clock when taken (UTC ns).
        accounts / positions / working_orders / strategies / risk / open_round_trips: as :meth:`Desk.accounts`,
            :meth:`Desk.positions`, :meth:`Desk.working_orders` (with bracket children), :meth:`Desk.strategies`,
            :meth:`Desk.risk_status` and :meth:`Desk.open_round_trips` return them.
    """

    as_of_seq: int | None
    ts_ns: int
    accounts: tuple[AccountSummary, ...]
    positions: tuple[PositionSnapshot, ...]
    working_orders: tuple[OrderView, ...]
    strategies: tuple[StrategyView, ...]
    risk: tuple[RuleStatus, ...]
    open_round_trips: tuple[OpenRoundTrip, ...]


@dataclass(slots=True)
class _Slot:
    strategy: Strategy
    state: StrategyState = StrategyState.RUNNING
    version: int = 1


# ------------------------------------------------------------------------------------------------ the desk


class Desk:
    """Commands and queries on one built node (see the module docstring).

    Args:
        built: the node as :class:`~propdesk.node.builder.NodeBuilder` wired it (its risk engine may be ``None``:
            then every order passes the gate and the risk figures are ``None``). With a journal (``built.journal``)
            the desk keeps its command results there and reads bars from its bar cache: call :meth:`start` first.
        engine: the journal's database to read (default: one opened on ``built.journal``'s URL when first needed,
            disposed by :meth:`close`).
        bar_source: where :meth:`bars` fetches what the bar cache lacks (cache-aside: fetched bars are cached);
            ``None``: only the cached bars are served.

    Attributes:
        before_add: called with ``(strategy, symbol)`` by :meth:`add_strategy` just before the strategy goes on the
            node (a live account prepares the contract's bars and the strategy's warm-up there), or ``None``.
    """

    def __init__(
        self, built: BuiltNode, *, engine: AsyncEngine | None = None, bar_source: BarSource | None = None
    ) -> None:
        self.built = built
        self.node = built.node
        self._om = built.node.orders
        self.risk: RiskEngine | None = built.risk
        self._results: dict[str, StoredResult] = {}
        self._slots: dict[str, _Slot] = {}
        self._fills: list[OrderFilled] = []
        self._trips = RoundTripBuilder(self.node.positions.spec_of)
        self._engine = engine
        self._own_engine = False
        self._bar_source = bar_source
        self._bar_cache: BarCache | None = None
        self._started = built.journal is None  # a journal's stored results must be loaded first
        self.stream: EventStream | None = None
        self.before_add: Callable[[Strategy, str], None] | None = None
        """The sequenced event stream once attached; ``None`` before."""
        self.node.bus.subscribe(topics.ORDER_FILLED, self._on_fill, priority=Priority.LATE)

    def attach_stream(self, stream: EventStream) -> None:
        """Attach the sequenced event stream (:class:`propdesk.node.stream.EventStream`): :meth:`snapshot` takes its
        sequence point."""
        self.stream = stream

    # ------------------------------------------------------------------------------------------------ journal

    def _db(self) -> AsyncEngine:
        engine = self._engine
        if engine is None:
            journal = self.built.journal
            if journal is None:
                raise ConfigError("the desk has no journal: its node was built without one (NodeBuilder(journal=...))")
            engine = self._engine = create_engine_for(journal.url)
            self._own_engine = True
        return engine

    async def start(self) -> int:
        """Load the account's command results from the journal (after the journal's database is migrated: its run
        opened); from then on the desk takes commands. Returns how many keys were loaded (0 without a journal).

        Raises:
            ValueError: a stored result is malformed. sqlalchemy errors: the journal cannot be read.
        """
        if self.built.journal is None:
            self._started = True
            return 0
        stored = await load_command_results(self._db(), int(self.node.account_id))
        self._results = {**stored, **self._results}
        self._started = True
        return len(stored)

    async def close(self) -> None:
        """Release the database connections the desk opened (the journal itself is the session's to close)."""
        engine, self._engine = self._engine, None
        if engine is not None and self._own_engine:
            await engine.dispose()
        self._own_engine = False
        self._bar_cache = None

    def _remember(self, key: str, digest: str, result: CommandResult) -> None:
        self._results[key] = (digest, result)
        journal = self.built.journal
        if journal is not None:
            row = command_result_row(int(self.node.account_id), digest, result)
            try:
                journal.journal.record_rows([("command_results", row)], int(self.node.account_id))
            except PropdeskError:  # the journal stopped: the command was handled, its key holds until the desk ends
                log.exception("desk: the result of key %r could not be journaled", key)

    def _on_fill(self, fill: object) -> None:
        if isinstance(fill, OrderFilled) and fill.account_id == self.node.account_id:
            self._fills.append(fill)
            try:
                self._trips.add(fill)
            except (PropdeskError, ValueError):  # a price off the tick grid: the fill is kept, its trip is not
                log.exception("desk: round trip of fill %s", fill.trade_id)

    def _now(self) -> int:
        return self.node.clock.timestamp_ns()

    # ------------------------------------------------------------------------------------------------ commands

    def execute(self, command: Command) -> CommandResult:
        """Handle ``command`` and return its result at once (see the module docstring).

        Never raises for a bad command (unknown order, price off the tick, bad parameter): that is a denial with
        rule id ``invalid``. An empty or too long idempotency key is such a denial too (and is not remembered), as is
        any command to a desk with a journal before :meth:`start`.
        """
        key = command.idempotency_key
        name = type(command).__name__
        if not isinstance(key, str) or not key.strip():
            return self._result(command, _deny(INVALID, f"{name}: an idempotency key is required"))
        if len(key) > MAX_KEY_LENGTH:
            reason = f"{name}: the idempotency key has {len(key)} characters (at most {MAX_KEY_LENGTH})"
            return self._result(command, _deny(INVALID, reason))
        if not self._started:
            reason = f"{name}: the desk is not started (its command keys are not loaded from the journal yet)"
            return self._result(command, _deny(INVALID, reason))
        digest = command_digest(command)
        seen = self._results.get(key)
        if seen is not None:
            first_digest, first = seen
            if first_digest == digest:
                return replace(first, replayed=True)
            reason = f"idempotency key {key!r} was already used by a different {first.command} command"
            return self._result(command, _deny(IDEMPOTENCY_CONFLICT, reason))
        if command.account_id is not None and command.account_id != int(self.node.account_id):
            result = self._result(
                command, _deny(INVALID, f"{name}: account {command.account_id} is not this desk's account")
            )
        else:
            try:
                result = self._dispatch(command)
            except (PropdeskError, ValueError) as exc:
                result = self._result(command, _deny(INVALID, f"{name}: {exc}"))
        self._remember(key, digest, result)
        return result

    def dry_run(self, command: SubmitOrder) -> CommandResult:
        """The verdict the gate would give ``command``'s order now and the USD it risks to its stop; nothing is sent
        and the idempotency key is not used up. The order is built as the submit would build it (not registered).

        ``risk`` (:class:`~propdesk.model.commands.RiskAtStop`) is set when the command has ``stop_loss_ticks``:
        ``qty x stop_loss_ticks x tick value``, and its share of the daily-loss headroom (the risk engine's daily
        loss left) and of the MLL headroom (equity above the floor).
        """
        try:
            spec = self.node.positions.spec_of(command.symbol)
            order = self._dry_order(command, spec)
        except (PropdeskError, ValueError) as exc:
            return self._result(command, _deny(INVALID, f"SubmitOrder: {exc}"), dry_run=True)
        reason = self._om.pre_check(
            order, stop_loss_ticks=command.stop_loss_ticks, take_profit_ticks=command.take_profit_ticks
        )
        verdict = ACCEPTED if reason is None else self._denial(reason)
        risk = None if command.stop_loss_ticks is None else self._risk_at_stop(command, spec)
        return self._result(command, verdict, dry_run=True, risk=risk)

    def _dispatch(self, command: Command) -> CommandResult:
        if isinstance(command, SubmitOrder):
            return self.dry_run(command) if command.dry_run else self._submit(command)
        if isinstance(command, ModifyOrder):
            return self._modify(command)
        if isinstance(command, CancelOrder):
            order = self._om.order(command.client_order_id)
            if order is not None and order.is_done:
                reason = f"CancelOrder: order {order.client_order_id} is already {order.status.value}"
                return self._result(command, _deny(INVALID, reason))
            self._om.cancel(command.client_order_id)  # False: a cancel is already on its way (accepted again)
            return self._result(command, ACCEPTED)
        if isinstance(command, CancelAllOrders):
            self._om.cancel_all(command.symbol)
            return self._result(command, ACCEPTED)
        if isinstance(command, ClosePosition):
            if not self.node.positions.net_qty(self.node.account_id, command.symbol):
                return self._result(command, _deny(INVALID, f"ClosePosition: no position in {command.symbol}"))
            self._om.close_position(command.symbol, command.qty)
            return self._result(command, ACCEPTED)
        if isinstance(command, FlattenAccount):
            self._om.flatten()
            return self._result(command, ACCEPTED)
        if isinstance(command, SetTradingState):
            return self._set_state(command)
        if isinstance(command, (StartStrategy, PauseStrategy, StopStrategy)):
            return self._lifecycle(command)
        if isinstance(command, UpdateStrategyParams):
            return self._update_params(command)
        return self._result(command, _deny(INVALID, f"unknown command {type(command).__name__}"))

    def _result(
        self,
        command: Command,
        verdict: Verdict,
        *,
        orders: tuple[ClientOrderId, ...] = (),
        dry_run: bool = False,
        risk: RiskAtStop | None = None,
    ) -> CommandResult:
        return CommandResult(
            idempotency_key=command.idempotency_key,
            command=type(command).__name__,
            verdict=verdict,
            client_order_ids=orders,
            risk=risk,
            dry_run=dry_run,
            ts_ns=self._now(),
        )

    # --- orders -------------------------------------------------------------------------------------------

    def _new_order(self, c: SubmitOrder) -> Order:
        om = self._om
        if c.order_type is OrderType.MARKET:
            return om.market(c.symbol, c.side, c.qty, c.tag)
        if c.order_type is OrderType.LIMIT:
            if c.limit_price is None:
                raise ValueError("a limit order needs limit_price")
            return om.limit(c.symbol, c.side, c.qty, c.tag, c.limit_price)
        if c.order_type is OrderType.STOP:
            if c.stop_price is None:
                raise ValueError("a stop order needs stop_price")
            return om.stop(c.symbol, c.side, c.qty, c.tag, c.stop_price)
        if c.order_type is OrderType.STOP_LIMIT:
            if c.stop_price is None or c.limit_price is None:
                raise ValueError("a stop-limit order needs stop_price and limit_price")
            return om.stop_limit(c.symbol, c.side, c.qty, c.tag, stop_price=c.stop_price, limit_price=c.limit_price)
        raise ValueError(f"order type {c.order_type.value} is not taken by the desk")

    def _submit(self, c: SubmitOrder) -> CommandResult:
        order = self._new_order(c)
        if c.stop_loss_ticks is not None or c.take_profit_ticks is not None:
            self._om.submit_bracket(order, stop_loss_ticks=c.stop_loss_ticks, take_profit_ticks=c.take_profit_ticks)
        else:
            self._om.submit(order)
        ids = (order.client_order_id,)
        if order.status is OrderStatus.DENIED:
            return self._result(c, self._denial(order.reason), orders=ids)
        if order.status is OrderStatus.REJECTED and " does not support " in order.reason:
            return self._result(c, _deny(UNSUPPORTED, order.reason), orders=ids)  # refused before the broker
        return self._result(c, ACCEPTED, orders=ids)

    def _modify(self, c: ModifyOrder) -> CommandResult:
        order = self._om.order(c.client_order_id)
        if order is None:
            return self._result(c, _deny(INVALID, f"ModifyOrder: unknown client order id {c.client_order_id!r}"))
        sent = self._om.modify(
            c.client_order_id, qty=c.qty, limit_price=c.limit_price, stop_price=c.stop_price, trail_ticks=c.trail_ticks
        )
        if not sent:
            return self._result(c, self._denial(order.reason), orders=(order.client_order_id,))
        return self._result(c, ACCEPTED, orders=(order.client_order_id,))

    def _dry_order(self, c: SubmitOrder, spec: ContractSpec) -> Order:
        for what, price in (("limit price", c.limit_price), ("stop price", c.stop_price)):
            if price is not None and not price.is_aligned(spec.tick_size):
                raise ValueError(f"{what} {price} on {c.symbol} is not a multiple of the tick size {spec.tick_size}")
        return Order(
            client_order_id=ClientOrderId(f"dry-{c.idempotency_key}"),
            account_id=self.node.account_id,
            symbol=c.symbol,
            side=c.side,
            qty=c.qty,
            order_type=c.order_type,
            limit_price=c.limit_price,
            stop_price=c.stop_price,
            tag=c.tag,
            ts_init_ns=self._now(),
        )

    def _risk_at_stop(self, c: SubmitOrder, spec: ContractSpec) -> RiskAtStop:
        ticks = c.stop_loss_ticks or 0
        at_risk = spec.tick_value * (c.qty * ticks)
        daily = mll = None
        risk = self.risk
        if risk is not None:
            daily = _money(risk.status().get("daily_loss_left_usd"))
            floor = risk.state.mll_floor
            mll = None if floor is None else risk.state.equity - floor
        return RiskAtStop(
            at_risk_usd=at_risk,
            daily_loss_headroom_usd=daily,
            mll_headroom_usd=mll,
            daily_loss_share=_share(at_risk, daily),
            mll_share=_share(at_risk, mll),
        )

    def _denial(self, reason: str) -> Verdict:
        """The verdict of a gate's denial ``reason``: the rule named first (``R5: ...``), or the trading state."""
        rule_id = "gate"
        if reason.startswith("account HALTED"):
            rule_id = TradingState.HALTED.name
        elif reason.startswith("account REDUCING"):
            rule_id = TradingState.REDUCING.name
        elif reason.startswith("strategy "):
            rule_id = STRATEGY_HOLD
        elif self.risk is not None:
            for rule in self.risk.rules.rules:
                if reason.startswith(f"{rule.rule_id}: "):
                    rule_id = rule.rule_id
                    break
        usd, qty = self._headroom(rule_id)
        return Verdict(accepted=False, rule_id=rule_id, reason=reason, headroom_usd=usd, headroom_qty=qty)

    def _headroom(self, rule_id: str) -> tuple[Money | None, Decimal | None]:
        """USD (R1, R2, R3) or mini-equivalent contracts (R5) left before ``rule_id``'s limit now."""
        figures = self._rule_figures()
        value = figures.get(rule_id)
        if value is None:
            return None, None
        headroom = value[2]
        if headroom is None:
            return None, None
        if rule_id == "R5":
            return None, headroom
        return Money.of(headroom), None

    def _rule_figures(self) -> dict[str, tuple[Decimal | None, Decimal | None, Decimal | None]]:
        """``rule_id -> (value, limit, headroom)`` for the rules with a numeric limit (see :class:`RuleStatus`)."""
        risk = self.risk
        out: dict[str, tuple[Decimal | None, Decimal | None, Decimal | None]] = {}
        if risk is None:
            return out
        state = risk.state
        for rule in risk.rules.rules:
            p: Any = rule.params
            rid = rule.rule_id
            try:
                if rid == "R1":
                    floor = state.mll_floor
                    amount = p.amount.as_decimal()
                    if floor is None:
                        out[rid] = (None, amount, None)
                    else:
                        distance = (state.equity - floor).as_decimal()
                        out[rid] = (distance, amount, max(distance, Decimal(0)))
                elif rid in ("R2", "R3") and isinstance(getattr(p, "amount", None), Money):
                    loss = max(-state.day_net.as_decimal(), Decimal(0))
                    limit = p.amount.as_decimal()
                    out[rid] = (loss, limit, max(limit - loss, Decimal(0)))
                elif rid == "R5":
                    exposure = state.exposure_minis(count_working_orders=p.count_working_orders)
                    out[rid] = (exposure, p.limit, max(p.limit - exposure, Decimal(0)))
            except Exception:  # a status must not fail on one rule
                log.exception("desk: figures of rule %s", rid)
        return out

    # --- trading state --------------------------------------------------------------------------------------

    def _set_state(self, c: SetTradingState) -> CommandResult:
        risk = self.risk
        if risk is None or not risk.running:
            return self._result(c, _deny(INVALID, "SetTradingState: the node's risk engine is not running"))
        try:
            want = TradingState[c.state.upper()]
        except KeyError:
            names = ", ".join(s.name for s in TradingState)
            return self._result(c, _deny(INVALID, f"SetTradingState: unknown state {c.state!r} (one of {names})"))
        guard = risk.guard
        now = guard.state
        if want < now and not c.admin:
            reason = f"the account is {now.name}: moving to the less restrictive {want.name} needs admin=True"
            return self._result(c, _deny(ADMIN_REQUIRED, reason))
        reason = c.reason or f"set {want.name} from the desk"
        if want is TradingState.ACTIVE:
            guard.clear_condition(DESK_CONDITION)
        else:
            guard.set_condition(DESK_CONDITION, want, reason)  # replaces the desk's earlier restriction
        return self._result(c, ACCEPTED)

    # --- strategies -----------------------------------------------------------------------------------------

    def _slot(self, tag: str) -> _Slot | None:
        slot = self._slots.get(tag)
        if slot is None:
            for strategy in self.node.strategies:
                if strategy.tag == tag:
                    slot = self._slots[tag] = _Slot(strategy)
                    break
        return slot

    def _all_slots(self) -> list[_Slot]:
        return [s for s in (self._slot(st.tag) for st in self.node.strategies) if s is not None]

    def _lifecycle(self, c: StartStrategy | PauseStrategy | StopStrategy) -> CommandResult:
        slot = self._slot(c.strategy)
        if slot is None:
            return self._result(c, _deny(INVALID, f"{type(c).__name__}: no strategy with tag {c.strategy!r}"))
        before = slot.state
        strategy = slot.strategy
        mode: StopMode | None = None
        if isinstance(c, StartStrategy):
            slot.state = StrategyState.RUNNING
            self._om.hold_tag(strategy.tag, None)
            if before is StrategyState.STOPPED:
                self.node.resume_data(strategy)
                strategy.on_start()
        elif isinstance(c, PauseStrategy):
            if before is StrategyState.STOPPED:
                return self._result(c, _deny(INVALID, f"PauseStrategy: {c.strategy} is stopped (start it first)"))
            slot.state = StrategyState.PAUSED
            self._om.hold_tag(strategy.tag, self._entry_hold(strategy))
        else:
            mode = c.mode
            if before is not StrategyState.STOPPED:
                self._stop(slot, c.mode)
        if slot.state is not before:
            event = StrategyStateChanged(
                tag=strategy.tag, state=slot.state, previous=before, ts_ns=self._now(), mode=mode
            )
            self.node.bus.publish(STRATEGY_STATE_TOPIC, event)
        return self._result(c, ACCEPTED)

    def _entry_hold(self, strategy: Strategy) -> Callable[[Order], str | None]:
        """A paused strategy's hold: an order that does not reduce its own position (risk-rules.md section 6's test,
        against the strategy's attributed position and its own working orders) is denied; bracket children pass."""
        om, node, tag = self._om, self.node, strategy.tag

        def check(order: Order) -> str | None:
            if order.parent_id is not None:
                return None
            position = node.strategy_qty(order.symbol, tag)
            violation = reduce_only_violation(order, position, om.orders_for_tag(tag, open_only=True))
            return None if violation is None else f"strategy {tag} is paused: only exits pass ({violation})"

        return check

    def _stop(self, slot: _Slot, mode: StopMode) -> None:
        strategy = slot.strategy
        tag, om = strategy.tag, self._om
        if mode is not StopMode.LEAVE:
            for order in om.orders_for_tag(tag, open_only=True):
                if order.status is not OrderStatus.INITIALIZED:
                    om.cancel(order.client_order_id)
        if mode is StopMode.FLATTEN:
            om.hold_tag(tag, None)  # the close must reach the gate
            strategy.ctx.close_position(strategy.symbol, tag)

        def stopped(order: Order) -> str | None:
            return None if order.parent_id is not None else f"strategy {tag} is stopped"

        om.hold_tag(tag, stopped)
        self.node.suspend_data(strategy)
        slot.state = StrategyState.STOPPED
        strategy.on_stop()

    def _update_params(self, c: UpdateStrategyParams) -> CommandResult:
        slot = self._slot(c.strategy)
        if slot is None:
            return self._result(c, _deny(INVALID, f"UpdateStrategyParams: no strategy with tag {c.strategy!r}"))
        if c.expected_version != slot.version:
            reason = (
                f"strategy {c.strategy}: parameters are at version {slot.version}, not {c.expected_version} "
                "(changed since they were read)"
            )
            return self._result(c, _deny(VERSION_CONFLICT, reason))
        strategy = slot.strategy
        old: StrategyConfig = strategy.config
        cls = type(strategy).config_cls
        try:
            new = cls.model_validate({**old.model_dump(), **dict(c.params)})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<params>'}: {err['msg']}" for err in exc.errors()
            )
            return self._result(c, _deny(INVALID, f"strategy {c.strategy}: {problems}"))
        changed = tuple((k, getattr(new, k)) for k in type(new).model_fields if getattr(new, k) != getattr(old, k))
        fixed = sorted({k for k, _ in changed} & {"symbol", "tag", "timeframe"})
        if fixed:
            reason = f"strategy {c.strategy}: {', '.join(fixed)} are fixed when the strategy is wired"
            return self._result(c, _deny(NOT_LIVE, reason))
        not_live = sorted({k for k, _ in changed} - live_fields(cls))
        if not_live and slot.state is not StrategyState.STOPPED:
            reason = (
                f"strategy {c.strategy} is {slot.state.value}: {', '.join(not_live)} can change only while it is "
                f"stopped (live: {', '.join(sorted(live_fields(cls))) or 'none'})"
            )
            return self._result(c, _deny(NOT_LIVE, reason))
        if changed:
            strategy.config = new
            strategy.on_params_changed(old, new)
            slot.version += 1
            event = StrategyParamsChanged(tag=strategy.tag, version=slot.version, changed=changed, ts_ns=self._now())
            self.node.bus.publish(STRATEGY_PARAMS_TOPIC, event)
        return self._result(c, ACCEPTED)

    # ------------------------------------------------------------------------------------------------ queries

    def accounts(self) -> list[AccountSummary]:
        """The desk's account now (one entry: a desk drives one node, one account)."""
        node, pf = self.node, self.node.portfolio
        risk = self.risk
        floor = distance = left = None
        left_rule: str | None = None
        share = limit = None
        state_name = TradingState.ACTIVE.name
        reasons: tuple[str, ...] = ()
        lockouts: tuple[Lockout, ...] = ()
        trades = pf.day_fill_count()
        day_realized = pf.day_realized_net()
        balance, equity = pf.balance(), pf.equity()
        if risk is not None:
            st = risk.state
            status = risk.status()
            balance, equity, day_realized = st.balance, st.equity, st.day_realized_net
            floor = st.mll_floor
            distance = None if floor is None else equity - floor
            left, left_rule = _money(status.get("daily_loss_left_usd")), status.get("daily_loss_rule")
            trades = st.trades_today
            state_name = risk.trading_state.name
            reasons = tuple(status.get("reasons", ()))
            lockouts = risk.guard.lockouts if risk.running else ()
            days = [(d.trading_date, d.net_pnl) for d in (*risk.day_closes, risk.day_so_far())]
            share = best_day_share(days)[2]
            r16 = risk.config.rule("R16")
            pct = None if r16 is None else r16.params.get("max_best_day_pct")
            limit = None if pct is None else Decimal(str(pct))
        unrealized = pf.unrealized_pnl()
        return [
            AccountSummary(
                account_id=int(node.account_id),
                balance_usd=balance,
                equity_usd=equity,
                day_realized_net_usd=day_realized,
                unrealized_usd=unrealized,
                day_net_usd=day_realized + unrealized,
                mll_floor_usd=floor,
                mll_distance_usd=distance,
                daily_loss_left_usd=left,
                daily_loss_rule=left_rule,
                consistency_share=share,
                consistency_limit=limit,
                trades_today=trades,
                trading_state=state_name,
                state_reasons=reasons,
                lockouts=lockouts,
                connected=bool(getattr(node.broker, "is_connected", False)),
                ts_ns=self._now(),
            )
        ]

    def positions(self) -> list[PositionSnapshot]:
        """The account's open positions (account level, with unrealized PnL at the current marks), by symbol."""
        return self.node.portfolio.open_positions()

    def working_orders(self) -> list[OrderView]:
        """The open orders; a bracket child whose entry is also open is listed under it (``children``), else at the
        top level with its ``parent_id``."""
        open_orders = self._om.open_orders()
        ids = {o.client_order_id for o in open_orders}
        kids: dict[ClientOrderId, list[Order]] = {}
        for o in open_orders:
            if o.parent_id is not None and o.parent_id in ids:
                kids.setdefault(o.parent_id, []).append(o)
        return [
            OrderView.of(o, tuple(OrderView.of(k) for k in kids.get(o.client_order_id, ())))
            for o in open_orders
            if o.parent_id is None or o.parent_id not in ids
        ]

    def fills(self) -> list[OrderFilled]:
        """The account's fills since the desk was created, oldest first."""
        return list(self._fills)

    def round_trips(self) -> list[RoundTrip]:
        """The account's closed round trips since the desk was created, oldest first (per strategy tag and contract;
        a foreign fill attributed as the position manager does: :mod:`propdesk.execution.round_trips`)."""
        return list(self._trips.closed)

    def open_round_trips(self) -> list[OpenRoundTrip]:
        """The round trips open now (their position not back to flat), in the order they opened."""
        return self._trips.open_trips()

    def risk_status(self) -> list[RuleStatus]:
        """Each rule of the risk engine now (empty without one): see :class:`RuleStatus`."""
        risk = self.risk
        if risk is None:
            return []
        figures = self._rule_figures()
        last_pre = ""
        entries = getattr(risk.audit, "entries", None)  # a ring of recent entries (the default audit log) has them
        pre = entries(point="pre") if callable(entries) else []
        if pre:
            entry = pre[-1]
            last_pre = f"{entry.action}: {'; '.join(entry.reasons)}" if entry.reasons else entry.action
        out = []
        for r in risk.status()["rules"]:
            value, limit, headroom = figures.get(r["rule_id"], (None, None, None))
            out.append(
                RuleStatus(
                    rule_id=r["rule_id"],
                    firm=r["firm"],
                    describe=r["describe"],
                    state=r["action"] or "ALLOW",
                    reason=r["reason"],
                    used_fraction=r["used_fraction"],
                    value=value,
                    limit=limit,
                    headroom=headroom,
                    last_decision=last_pre,
                )
            )
        return out

    def daily_stats(self) -> list[DayClose]:
        """The trading days closed so far (at their session roll) and today so far (``complete=False``), oldest
        first: net PnL, balance, MLL floor, trades and contracts (empty without a risk engine)."""
        risk = self.risk
        if risk is None:
            return []
        return [*risk.day_closes, risk.day_so_far()]

    def strategy_stats(self) -> dict[str, StrategySummary]:
        """Per strategy tag (``desk`` for the desk's own orders): realized and unrealized PnL, fees, open positions and
        fills (the portfolio's attribution)."""
        return self.node.portfolio.strategy_summaries()

    def audit(self, *, point: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The risk engine's most recent audit entries (at most ``limit``, oldest first; ``point``: ``pre``, ``fill``,
        ``quote``, ``clock``, ``condition`` ... only). Empty without a risk engine or when its audit log keeps no
        entries in memory (a file log: read the file)."""
        risk = self.risk
        entries = None if risk is None else getattr(risk.audit, "entries", None)
        if not callable(entries):
            return []
        found: list[AuditEntry] = entries(point=point)
        return found[-limit:] if limit > 0 else []

    def strategies(self) -> list[StrategyView]:
        """The node's strategies with their state, parameters and parameter version."""
        return [
            StrategyView(
                tag=s.strategy.tag,
                name=s.strategy.name,
                symbol=s.strategy.symbol,
                state=s.state,
                params=s.strategy.config.model_dump(),
                version=s.version,
                live=live_fields(type(s.strategy).config_cls),
            )
            for s in self._all_slots()
        ]

    async def bars(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        start_ns: int,
        end_ns: int,
        limit: int | None = None,
    ) -> list[Bar]:
        """Bars of ``symbol`` / ``timeframe`` opening in ``[start_ns, end_ns)`` (UTC ns), oldest first, from the
        journal's bar cache (:class:`propdesk.storage.cache.BarCache`); with the desk's ``bar_source`` the spans the
        cache lacks are fetched and cached, else only cached bars are served. ``limit``: at most that many, the
        latest of the range.

        Raises:
            ConfigError: the desk has no journal (so no bar cache).
            ValueError: an empty range, a ``limit`` below 1, or a malformed timeframe.
            Whatever the bar source raises; sqlalchemy errors: the database failed.
        """
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if end_ns <= start_ns:
            raise ValueError(f"bar range [{start_ns}, {end_ns}) of {symbol} is empty")
        tf = timeframe if isinstance(timeframe, Timeframe) else Timeframe.parse(timeframe)
        if self.built.journal is None and self._engine is None:
            raise ConfigError(f"bars of {symbol} {tf}: the desk has no journal, so no bar cache to read them from")
        cache = self._bar_cache
        if cache is None:
            cache = self._bar_cache = BarCache(Repository(self._db()))
        if self._bar_source is not None:
            found = list(await cache.get(symbol, tf, start_ns, end_ns, self._bar_source))
        else:
            found = await cache.repository.load_bars(symbol, str(tf), start_ns, end_ns)
        return found if limit is None else found[-limit:]

    def snapshot(self) -> DeskSnapshot:
        """The desk's state now with the attached stream's sequence point (``as_of_seq``; ``None`` without a
        stream), taken in one call on the core's thread: see the module docstring.

        Raises:
            propdesk.storage.journal.JournalClosedError: the journal cannot number what it captured yet (its writer has
                not started).
        """
        stream = self.stream
        as_of = None if stream is None else stream.sequence_point()
        return DeskSnapshot(
            as_of_seq=as_of,
            ts_ns=self._now(),
            accounts=tuple(self.accounts()),
            positions=tuple(self.positions()),
            working_orders=tuple(self.working_orders()),
            strategies=tuple(self.strategies()),
            risk=tuple(self.risk_status()),
            open_round_trips=tuple(self.open_round_trips()),
        )

    def contracts(self, symbols: Sequence[str] | None = None) -> list[ContractSpec]:
        """The contract specs of ``symbols`` (default: the symbols the node trades or holds, sorted)."""
        if symbols is None:
            held = {p.symbol for p in self.node.portfolio.open_positions()}
            symbols = sorted({s.symbol for s in self.node.strategies} | held | {o.symbol for o in self._om.orders()})
        return [self.node.positions.spec_of(s) for s in symbols]

    # --- what the consoles and session summaries read besides the above ------------------------------------

    def pnl(self) -> list[PnlTotals]:
        """The desk's account's PnL since the node started (one entry), from the portfolio: realized gross, fees,
        unrealized, balance, equity and the portfolio's day net (see :class:`~propdesk.node.desk_views.PnlTotals`)."""
        pf = self.node.portfolio
        realized, fees, unrealized = pf.realized_pnl(), pf.fees(), pf.unrealized_pnl()
        balance = pf.balance()
        return [
            PnlTotals(
                account_id=int(self.node.account_id),
                starting_balance_usd=pf.starting_balance,
                realized_usd=realized,
                fees_usd=fees,
                realized_net_usd=realized - fees,
                unrealized_usd=unrealized,
                balance_usd=balance,
                equity_usd=balance + unrealized,
                day_net_usd=pf.day_net_pnl(),
            )
        ]

    def all_positions(self) -> list[PositionSnapshot]:
        """Every account-level position the node has held, flat ones included (their realized PnL and fees kept), by
        symbol; ``unrealized_pnl`` at the current marks (``None`` when flat or unmarked)."""
        pm = self.node.positions
        return [p.snapshot(pm.position_unrealized(p)) for p in pm.positions(self.node.account_id)]

    def order(self, client_order_id: ClientOrderId) -> OrderView | None:
        """The order ``client_order_id`` now, open or not (``None`` if the node does not know it)."""
        order = self._om.order(client_order_id)
        return None if order is None else OrderView.of(order)

    def trading_day(self) -> TradingDay | None:
        """The risk engine's trading date, next session roll and next flat time, preset and fail-closed conditions
        (``None`` without a risk engine)."""
        risk = self.risk
        if risk is None:
            return None
        timers = risk.timers
        state = risk.state
        next_reset = timers.next_ns("roll") if timers is not None else None
        return TradingDay(
            trading_date=state.trading_date,
            next_reset_ns=state.next_day_start_ns if next_reset is None else next_reset,
            next_flat_ns=timers.next_ns("flatten") if timers is not None else None,
            preset=risk.config.preset,
            conditions=risk.guard.conditions if risk.running else {},
        )

    def risk_outcomes(self) -> RiskOutcomes | None:
        """What the risk engine did since it started: trading state timeline, lockouts, orders denied by rule,
        flattens (``None`` without a risk engine)."""
        return None if self.risk is None else self.risk.outcomes

    # ------------------------------------------------------------------------------------------------ instances

    def add_strategy(
        self,
        strategy: Strategy,
        symbol: str,
        *,
        timeframe: Timeframe | None = None,
        version: int = 1,
        state: StrategyState = StrategyState.RUNNING,
    ) -> StrategyView:
        """Add ``strategy`` on ``symbol`` to the running node (``propdesk serve``'s instances), at parameter
        ``version`` and in ``state`` (a paused one holds its entries; a stopped one gets no data and no orders). On a
        started node its ``on_start`` runs at once (for a stopped one, ``on_stop`` follows).
        ``timeframe``: the bars' timeframe on ``symbol``, set as the node's bar source first.

        Raises:
            ValueError: a strategy with the same tag is already on the node, or ``version`` < 1.
            ConfigError: its timeframe cannot be built from the bars (finer, or not a whole multiple).
        """
        if version < 1:
            raise ValueError(f"strategy {strategy.tag}: parameter version must be >= 1, not {version}")
        if timeframe is not None and self.node.bar_feeds.source(symbol) is None:
            self.node.bar_feeds.set_source(symbol, timeframe)
        if self.before_add is not None:
            self.before_add(strategy, symbol)
        self.node.add_strategy(strategy, symbol)
        slot = self._slots[strategy.tag] = _Slot(strategy, version=version)
        if state is StrategyState.PAUSED:
            slot.state = StrategyState.PAUSED
            self._om.hold_tag(strategy.tag, self._entry_hold(strategy))
        elif state is StrategyState.STOPPED:
            self._stop(slot, StopMode.LEAVE)
        return next(v for v in self.strategies() if v.tag == strategy.tag)

    def remove_strategy(self, tag: str) -> Strategy:
        """Take the stopped strategy ``tag`` off the node (its orders, fills and attributed position stay with the
        node; its hold stays, so an order still arriving under its tag is denied).

        Raises:
            ValueError: no strategy has ``tag``, or it is not stopped.
        """
        slot = self._slot(tag)
        if slot is None:
            raise ValueError(f"no strategy with tag {tag!r}")
        if slot.state is not StrategyState.STOPPED:
            raise ValueError(f"strategy {tag} is {slot.state.value}: stop it first")
        self.node.remove_strategy(tag)
        del self._slots[tag]
        return slot.strategy


def _deny(rule_id: str, reason: str) -> Verdict:
    return Verdict(accepted=False, rule_id=rule_id, reason=reason)


def _money(value: object) -> Money | None:
    return None if value is None else Money.of(str(value))


def _share(amount: Money, of: Money | None) -> Decimal | None:
    if of is None or of.cents <= 0:
        return None
    return Decimal(amount.cents) / Decimal(of.cents)
