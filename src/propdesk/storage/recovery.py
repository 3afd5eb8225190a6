"""Crash recovery: rebuild a node's state from the journal before it trades (ARCHITECTURE.md principle 7).

Two steps, split so the reading (async, database) stays apart from the applying (sync, the core):

1. :func:`load_recovery` reads what the journal holds for one account: the orders that were open at their last
   journaled event (with their fills), every journaled fill, the newest position snapshot of each contract, the newest
   risk-engine account snapshot (day counters, peaks, histories) with the time and trade it was taken after, the
   end-of-day balance history and the lockouts still active. It returns a :class:`RecoveredState`.
2. :func:`apply_recovery` puts that state into a freshly built node, **before** the journal is attached, the risk
   engine is started, strategies are added and the broker is reconciled:

   * **fills are the source of truth for positions**: every journaled fill is replayed, oldest first, through the
     node's :class:`~propdesk.execution.positions.PositionManager` (idempotent by trade id), which rebuilds the
     account-level and per-strategy positions, realized PnL and fees exactly; the journal's position snapshots are
     only a cross-check (a mismatch is reported, never applied);
   * open orders are adopted by the order manager (:meth:`~propdesk.execution.order_manager.OrderManager.restore`)
     together with every journaled trade id, so a fill the broker reports again is dropped as a duplicate;
   * the portfolio's day baseline is set at ``day_start_ns`` (the current trading day's start) when given;
   * with an :class:`~propdesk.risk.state.AccountState`: fills up to the newest account snapshot are counted, the
     snapshot is restored over them (day counters, peaks, EOD balances, daily history, loss streak), then the fills
     journaled after it are counted; end-of-day balances in the ``eod_balances`` table that the snapshot lacks are
     seeded (they move the trailing drawdown floor);
   * with a lockout store: the active lockouts are saved into it (the store keeps the stricter of two), for a guard
     whose store is not the journal's own :class:`~propdesk.storage.lockouts.SqlLockoutStore`.

Then the caller reconciles against the broker's reports (:class:`propdesk.risk.reconcile.Reconciler`): fills the
node missed while it was down, orders that filled or were canceled at the broker meanwhile. Strategies are rebuilt
last: a strategy is a deterministic function of the bars it saw and its own position, so it is warmed up on the bars
before the resume point (its orders refused) and then bound to the node (``tests/integration/crash_driver.py`` shows
the whole sequence).

Not restored: synthesized (non-native) bracket records (the children are restored as plain orders, so they are not
resized after a restart); OCO groups made by ``submit_oco`` (a broker with native OCO still links the legs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select

from propdesk.core.errors import ConfigError, PropdeskError
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import Order
from propdesk.model.price import Money, Price
from propdesk.model.records import Lockout
from propdesk.storage import rows as rw
from propdesk.storage.repositories import TABLES, Repository

if TYPE_CHECKING:
    from propdesk.model.records import AccountSnapshot

__all__ = [
    "AccountStateLike",
    "LockoutSink",
    "PositionCheck",
    "RecoverableNode",
    "RecoveredState",
    "RecoveryReport",
    "apply_recovery",
    "load_recovery",
]

log = logging.getLogger("propdesk.storage.recovery")


@dataclass(frozen=True, slots=True)
class PositionCheck:
    """The newest journaled account-level position snapshot of one contract, for the cross-check.

    Attributes:
        symbol: the contract; trade_id: the fill it was taken after; signed_qty: contracts; avg_price: points or
            ``None`` when flat; realized_pnl: USD, gross of fees, since the position record was created.
    """

    symbol: str
    trade_id: str
    signed_qty: int
    avg_price: Price | None
    realized_pnl: Money


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveredState:
    """What the journal holds for one account (see :func:`load_recovery`).

    Attributes:
        account_id: the account.
        now_ns: the time the state was read for (lockouts active at it), UTC ns.
        open_orders: orders open (sent or working) at their last journaled event, oldest first, with their fills.
        fills: every journaled fill of the account, oldest first (event time, then journal order).
        positions: the newest account-level position snapshot of each contract (flat ones included).
        account_snapshot: the newest risk-engine account snapshot, or ``None``.
        snapshot_ts_ns / snapshot_kind / snapshot_ref: when it was taken, ``fill``/``eod``/``manual``, and its
            reference (the trade id of the fill it followed, the ended trading date).
        eod_balances: ``(trading date, balance USD)`` from the ``eod_balances`` table, oldest first.
        lockouts: lockouts active at ``now_ns``, oldest first.
        last_fill_ts_ns: event time of the newest journaled fill (reconciliation asks the broker for fills since
            then), ``None`` when there is none.
        last_event_ts_ns: event time of the newest journaled order event, ``None`` when there is none.
        done_order_ids: client order ids the journal has as done (filled, canceled ...) whose last event is at or
            after :attr:`last_fill_ts_ns`: the reconciler must not adopt them again from the broker's order history
            (``Reconciler.reconcile(done=...)``).
    """

    account_id: AccountId
    now_ns: int
    open_orders: list[Order]
    fills: list[OrderFilled]
    positions: list[PositionCheck]
    account_snapshot: AccountSnapshot | None = None
    snapshot_ts_ns: int | None = None
    snapshot_kind: str = ""
    snapshot_ref: str = ""
    eod_balances: list[tuple[date, Money]] = field(default_factory=list)
    lockouts: list[Lockout] = field(default_factory=list)
    last_fill_ts_ns: int | None = None
    last_event_ts_ns: int | None = None
    done_order_ids: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        """True when the journal holds nothing for the account (a first start)."""
        return not (self.open_orders or self.fills or self.account_snapshot or self.lockouts or self.eod_balances)

    def split_at_snapshot(self) -> tuple[list[OrderFilled], list[OrderFilled]]:
        """The fills counted in :attr:`account_snapshot` and those journaled after it (all after when there is no
        snapshot). A ``fill`` snapshot follows the fill named by its ``ref``; otherwise fills at or after the
        snapshot's time come after it."""
        if self.account_snapshot is None or self.snapshot_ts_ns is None:
            return [], list(self.fills)
        if self.snapshot_kind == "fill":
            for i, f in enumerate(self.fills):
                if f.trade_id == self.snapshot_ref:
                    return self.fills[: i + 1], self.fills[i + 1 :]
        ts = self.snapshot_ts_ns
        before = [f for f in self.fills if f.ts_event_ns < ts]
        return before, self.fills[len(before) :]


async def load_recovery(repository: Repository, account_id: int, now_ns: int) -> RecoveredState:
    """Read the journal's state of ``account_id`` (see the module docstring) for a restart at ``now_ns`` (UTC ns).

    Raises:
        sqlalchemy errors: the database cannot be read (the node must not trade then).
    """
    acct = AccountId(account_id)
    open_orders = await repository.open_orders(account_id)
    fills = await repository.fills(account_id)
    eod = await repository.eod_balances(account_id)
    lockouts = await repository.active_lockouts(account_id, now_ns)
    last_fill = max((f.ts_event_ns for f in fills), default=None)
    snap_row, positions, last_event, done = await _read_rows(repository, account_id, last_fill or 0)
    snapshot = None if snap_row is None else rw.account_snapshot_from_row(snap_row)
    return RecoveredState(
        account_id=acct,
        now_ns=now_ns,
        open_orders=open_orders,
        fills=fills,
        positions=positions,
        account_snapshot=snapshot,
        snapshot_ts_ns=None if snap_row is None else int(snap_row.ts_ns),
        snapshot_kind="" if snap_row is None else str(snap_row.kind),
        snapshot_ref="" if snap_row is None else str(snap_row.ref),
        eod_balances=eod,
        lockouts=lockouts,
        last_fill_ts_ns=last_fill,
        last_event_ts_ns=last_event,
        done_order_ids=done,
    )


async def _read_rows(
    repository: Repository, account_id: int, since_ns: int
) -> tuple[Any, list[PositionCheck], int | None, frozenset[str]]:
    orders = TABLES["orders"]
    snaps = TABLES["account_snapshots"]
    ps = TABLES["position_snapshots"]
    ev = TABLES["order_events"]
    newest = (
        select(ps.c.symbol, func.max(ps.c.id).label("id"))
        .where(ps.c.account_id == account_id, ps.c.position_tag == "")
        .group_by(ps.c.symbol)
        .subquery()
    )
    async with repository.engine.connect() as conn:
        snap_row = (
            await conn.execute(
                select(snaps)
                .where(snaps.c.account_id == account_id)
                .order_by(snaps.c.ts_ns.desc(), snaps.c.id.desc())
                .limit(1)
            )
        ).first()
        prows = (await conn.execute(select(ps).join(newest, ps.c.id == newest.c.id).order_by(ps.c.symbol))).all()
        last_event = (
            await conn.execute(select(func.max(ev.c.ts_event_ns)).where(ev.c.account_id == account_id))
        ).scalar()
        done = frozenset(
            str(r[0])
            for r in await conn.execute(
                select(orders.c.client_order_id).where(
                    orders.c.account_id == account_id, orders.c.is_open.is_(False), orders.c.ts_last_ns >= since_ns
                )
            )
        )
    positions = [
        PositionCheck(
            symbol=r.symbol,
            trade_id=r.trade_id,
            signed_qty=int(r.signed_qty),
            avg_price=None if r.avg_price_raw is None else Price(int(r.avg_price_raw)),
            realized_pnl=Money(int(r.realized_pnl_cents)),
        )
        for r in prows
    ]
    return snap_row, positions, None if last_event is None else int(last_event), done


# ------------------------------------------------------------------------------------------------ applying


class _OrderRestorer(Protocol):
    def restore(self, orders: Sequence[Order], *, trade_ids: Sequence[str] = ()) -> None: ...


class _PositionLike(Protocol):
    @property
    def signed_qty(self) -> int: ...
    @property
    def avg_price(self) -> Price | None: ...
    @property
    def realized_pnl(self) -> Money: ...


class _PositionReplayer(Protocol):
    def on_fill(self, fill: OrderFilled) -> bool: ...
    def has_trade(self, account_id: AccountId, trade_id: str) -> bool: ...
    def position(self, account_id: AccountId, symbol: str) -> Any: ...


class _DayReset(Protocol):
    def reset_day(self, ts_ns: int) -> None: ...


class RecoverableNode(Protocol):
    """What :func:`apply_recovery` needs of a node (:class:`propdesk.node.TradingNode` fits)."""

    @property
    def account_id(self) -> AccountId: ...
    @property
    def orders(self) -> Any: ...
    @property
    def positions(self) -> Any: ...
    @property
    def portfolio(self) -> Any: ...


class AccountStateLike(Protocol):
    """What :func:`apply_recovery` needs of the risk engine's :class:`~propdesk.risk.state.AccountState`."""

    def on_fill(self, fill: OrderFilled) -> bool: ...
    def restore(self, snap: AccountSnapshot) -> None: ...
    def seed(self, *, eod_balances: Sequence[tuple[date, Money]] | None = None) -> None: ...
    @property
    def eod_balances(self) -> Sequence[tuple[date, Money]]: ...


class LockoutSink(Protocol):
    """A lockout store to load the recovered lockouts into (:class:`~propdesk.risk.lockouts.LockoutStore`)."""

    def save(self, lockout: Lockout) -> None: ...


@dataclass(slots=True)
class RecoveryReport:
    """What :func:`apply_recovery` did.

    Attributes:
        orders_restored: open orders adopted by the order manager.
        fills_replayed: journaled fills applied to the position manager (duplicates excluded).
        fills_after_snapshot: fills counted by the account state after its snapshot (0 without an account state).
        account_restored: an account snapshot was restored into the account state.
        eod_seeded: end-of-day balances seeded into the account state beyond the snapshot's.
        lockouts: the active lockouts found (saved into the lockout store when one was given).
        discrepancies: journaled position snapshots that disagree with the positions rebuilt from fills.
        notes: everything else worth a log line (e.g. a snapshot older than the newest fill of its contract).
    """

    orders_restored: int = 0
    fills_replayed: int = 0
    fills_after_snapshot: int = 0
    account_restored: bool = False
    eod_seeded: int = 0
    lockouts: list[Lockout] = field(default_factory=list)
    discrepancies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing disagreed."""
        return not self.discrepancies


def apply_recovery(
    node: RecoverableNode,
    state: RecoveredState,
    *,
    account_state: AccountStateLike | None = None,
    lockout_store: LockoutSink | None = None,
    day_start_ns: int | None = None,
) -> RecoveryReport:
    """Put ``state`` into a freshly built ``node`` (see the module docstring for what is applied and in what order).

    Call it before the journal is attached, the risk engine started, strategies added and the broker reconciled:
    replayed fills publish position events (which a journal would ignore as duplicates, but strategies would see).

    Raises:
        OrderManagerError: a restored order belongs to another account or its id is already in use.
        ContractError, InvalidPriceError: a journaled fill the position manager refuses (corrupt journal).
        LockoutStoreError: the lockout store refused a lockout.
    """
    if state.account_id != node.account_id:
        raise ConfigError(f"recovered state of account {state.account_id} applied to a node of {node.account_id}")
    report = RecoveryReport()
    positions: _PositionReplayer = node.positions
    trade_ids = [f.trade_id for f in state.fills]
    for order in state.open_orders:
        _bring_forward(order, report)
    orders: _OrderRestorer = node.orders
    orders.restore(state.open_orders, trade_ids=trade_ids)
    report.orders_restored = len(state.open_orders)

    portfolio: _DayReset = node.portfolio
    counted, _after = state.split_at_snapshot()
    restore_at = len(counted) if account_state is not None and state.account_snapshot is not None else -1
    reset_done = day_start_ns is None
    state_log = logging.getLogger("propdesk.risk.state")
    level = state_log.level
    if restore_at > 0:
        # the snapshot restored after these fills replaces every figure they touch: silence the account state's
        # per-fill warnings about old fills dated before the current day
        state_log.setLevel(logging.ERROR)
    try:
        for i, f in enumerate(state.fills):
            if i == restore_at:
                _restore_snapshot(account_state, state, report, state_log, level)
            if not reset_done and f.ts_event_ns >= day_start_ns:  # type: ignore[operator]
                portfolio.reset_day(day_start_ns)  # type: ignore[arg-type]
                reset_done = True
            fresh = not positions.has_trade(node.account_id, f.trade_id)
            if account_state is not None:
                counted_now = account_state.on_fill(f)  # forwards the fill to the position manager first
                if counted_now and i >= restore_at:
                    report.fills_after_snapshot += 1
            else:
                positions.on_fill(f)
            if fresh and positions.has_trade(node.account_id, f.trade_id):
                report.fills_replayed += 1
        if restore_at == len(state.fills):
            _restore_snapshot(account_state, state, report, state_log, level)
    finally:
        state_log.setLevel(level)
    if not reset_done:
        portfolio.reset_day(day_start_ns)  # type: ignore[arg-type]
    if account_state is not None and state.eod_balances:
        have = {d for d, _m in account_state.eod_balances}
        missing = [(d, m) for d, m in state.eod_balances if d not in have]
        if missing:
            merged = sorted([*account_state.eod_balances, *missing])
            try:
                account_state.seed(eod_balances=merged)
                report.eod_seeded = len(missing)
            except ConfigError as exc:
                report.notes.append(f"EOD balances not seeded: {exc}")

    _check_positions(node, state, report)
    report.lockouts = list(state.lockouts)
    if lockout_store is not None:
        for lo in state.lockouts:
            lockout_store.save(lo)
    log.info(
        "recovered account %s: %d open orders, %d fills replayed, %d lockouts, %d discrepancies",
        state.account_id,
        report.orders_restored,
        report.fills_replayed,
        len(report.lockouts),
        len(report.discrepancies),
    )
    return report


def _bring_forward(order: Order, report: RecoveryReport) -> None:
    """Apply journaled fills of ``order`` that its row does not count yet (a row older than its fills)."""
    done = 0
    kept = 0
    for f in order.fills:
        if done >= order.filled_qty:
            break
        done += f.qty
        kept += 1
    extra = order.fills[kept:]
    if not extra:
        return
    order.fills = order.fills[:kept]
    for f in extra:
        try:
            order.add_fill(f)
        except PropdeskError as exc:
            report.discrepancies.append(f"order {order.client_order_id}: journaled fill {f.trade_id} refused: {exc}")
    report.notes.append(f"order {order.client_order_id}: {len(extra)} journaled fills applied over an older row")


def _restore_snapshot(
    account_state: AccountStateLike | None,
    state: RecoveredState,
    report: RecoveryReport,
    state_log: logging.Logger,
    level: int,
) -> None:
    assert account_state is not None and state.account_snapshot is not None
    state_log.setLevel(level)
    account_state.restore(state.account_snapshot)
    report.account_restored = True


def _check_positions(node: RecoverableNode, state: RecoveredState, report: RecoveryReport) -> None:
    last_fill: dict[str, str] = {}
    for f in state.fills:
        last_fill[f.symbol] = f.trade_id
    pm: _PositionReplayer = node.positions
    for snap in state.positions:
        pos: _PositionLike | None = pm.position(node.account_id, snap.symbol)
        if last_fill.get(snap.symbol) != snap.trade_id:
            report.notes.append(
                f"{snap.symbol}: the newest position snapshot (after trade {snap.trade_id}) predates the newest "
                f"fill {last_fill.get(snap.symbol)}: positions were rebuilt from the fills"
            )
            continue
        qty = 0 if pos is None else pos.signed_qty
        avg = None if pos is None or not qty else pos.avg_price
        realized = Money(0) if pos is None else pos.realized_pnl
        want_avg = snap.avg_price if snap.signed_qty else None
        if qty != snap.signed_qty or avg != want_avg or realized != snap.realized_pnl:
            report.discrepancies.append(
                f"{snap.symbol}: rebuilt from fills {qty} @ {avg} (realized {realized}) but the journal's snapshot "
                f"says {snap.signed_qty} @ {want_avg} (realized {snap.realized_pnl})"
            )
