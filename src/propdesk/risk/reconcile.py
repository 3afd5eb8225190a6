"""Reconciliation: make local order and position state agree with the broker's own reports (ARCHITECTURE.md, "A
reconnect"; NautilusTrader's reconciliation from order, fill and position reports).

After a restart (:mod:`propdesk.storage.recovery` restored the journal's state) or a reconnect, the
:class:`Reconciler` asks the broker for its open orders, its fills since a time (the newest journaled fill), its
positions and, when the broker keeps one, its order history (ProjectX ``/api/Order/search``). It then emits the
events the node missed, each marked ``reconciled=True``, through the node's broker-event handler (so the order
manager applies them, the position manager books the fills and the journal records them), in this order:

1. **Adopt** orders the broker has that the node does not know (lost with the journal's last unwritten batch, or a
   native bracket child the node never saw). A bracket child (``<entry>-sl``, ``<entry>-tp``, ``-sl2`` ...; see
   :mod:`propdesk.execution.brackets`) of a known order gets its entry's tag and ``parent_id``; another order is
   attributed by the ``attribute`` callback (e.g. the one strategy trading that contract), else tagged ``manual``
   (``ext-<broker id>`` for an order the broker reports without a client order id). Adopted orders enter as
   SUBMITTED through :meth:`~propdesk.execution.order_manager.OrderManager.restore`.
2. **Align** each open local order with the broker's report: ``OrderUpdated`` for a different quantity or price,
   ``OrderSuspended`` / ``OrderAccepted`` when the broker holds it or works it, ``OrderCancelRejected`` /
   ``OrderModifyRejected`` for a cancel or modify whose outcome was lost while the broker still works the order.
3. **Fills** the broker reports that the position manager has not booked (by trade id), oldest first, as
   ``OrderFilled``.
4. **Close** local orders that are open locally but not at the broker: the broker's terminal status from its history
   (``OrderCanceled``, ``OrderExpired``, ``OrderRejected``), else ``OrderCanceled`` ("no longer open at the broker").
5. **Check** positions: every broker position against the local account-level one (contracts and average price);
   a difference is a discrepancy (reported, never papered over: it means fills are missing from the reports).

A :class:`Reconciled` risk event with the counts and discrepancies is published on ``events.risk.reconciled`` (the
journal keeps it in the audit log); the account guard's :meth:`~propdesk.risk.guard.AccountGuard.reconciled` should be
called after a clean reconcile before the node trades again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from propdesk.core import topics
from propdesk.execution.order_manager import MANUAL_TAG, OrderManager
from propdesk.execution.positions import PositionManager
from propdesk.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderModifyRejected,
    OrderRejected,
    OrderSubmitted,
    OrderSuspended,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderStatus, OrderType, TimeInForce
from propdesk.model.price import Price
from propdesk.model.reports import FillReport, OrderReport, PositionReport
from propdesk.risk.events import RiskEvent

if TYPE_CHECKING:
    from propdesk.core.bus import MessageBus

__all__ = ["BrokerReports", "OrderHistory", "ReconcileReport", "Reconciled", "Reconciler", "bracket_parent_id"]

log = logging.getLogger("propdesk.risk.reconcile")

_CHILD_RE = re.compile(r"^(?P<parent>.+)-(?:sl|tp)\d*$")
_LIVE = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
_CLOSE_EVENTS: dict[OrderStatus, type[OrderCanceled] | type[OrderExpired] | type[OrderRejected]] = {
    OrderStatus.CANCELED: OrderCanceled,
    OrderStatus.EXPIRED: OrderExpired,
    OrderStatus.REJECTED: OrderRejected,
}


class BrokerReports(Protocol):
    """The report side of :class:`propdesk.brokers.base.Broker` (every broker has it)."""

    async def order_reports(self) -> list[OrderReport]:
        """Every open order at the broker."""
        ...

    async def fill_reports(self, since_ns: int) -> list[FillReport]:
        """Every fill at or after ``since_ns`` (UTC ns), oldest first."""
        ...

    async def position_reports(self) -> list[PositionReport]:
        """Every open position."""
        ...


@runtime_checkable
class OrderHistory(Protocol):
    """A broker that also reports closed orders (ProjectX ``/api/Order/search``): used when present."""

    async def order_history(self, since_ns: int) -> list[OrderReport]:
        """Every order placed or changed at or after ``since_ns`` (UTC ns), open or closed, with its status."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciled(RiskEvent):
    """A reconciliation finished (``events.risk.reconciled``).

    Attributes:
        fills: fills emitted; orders_adopted: orders the node did not know; events: events emitted in all;
        discrepancies: what could not be made to agree (empty when clean).
    """

    TOPIC: ClassVar[str] = topics.RISK_RECONCILED

    fills: int
    orders_adopted: int
    events: int
    discrepancies: tuple[str, ...] = ()


@dataclass(slots=True)
class ReconcileReport:
    """What :meth:`Reconciler.reconcile` did.

    Attributes:
        since_ns: fills were asked for from this time (UTC ns).
        adopted: client order ids of the orders adopted, in adoption order.
        fills: trade ids of the fills emitted, oldest first.
        closed: client order ids of local orders closed because the broker no longer works them.
        events: every event emitted, in order.
        discrepancies: human-readable differences left (positions that disagree, fills missing from the reports).
    """

    since_ns: int
    adopted: list[ClientOrderId] = field(default_factory=list)
    fills: list[str] = field(default_factory=list)
    closed: list[ClientOrderId] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    discrepancies: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when local state agrees with the broker's reports."""
        return not self.discrepancies


def bracket_parent_id(client_order_id: str) -> ClientOrderId | None:
    """The entry id of a bracket child id (``pd-x-7-sl`` -> ``pd-x-7``; ``-tp2`` too), else ``None``."""
    m = _CHILD_RE.match(client_order_id)
    return None if m is None else ClientOrderId(m["parent"])


Attribution = Callable[[ClientOrderId, str], str | None]
"""``(client order id, symbol) -> strategy tag`` for an adopted order that is not a bracket child, or ``None``."""


class Reconciler:
    """Brings the order manager and position manager in line with the broker's reports (module docstring).

    Args:
        orders: the node's order manager; positions: its position manager.
        broker: the broker's reports (:class:`BrokerReports`; :class:`OrderHistory` is used when it has it).
        account_id: the account.
        emit: where the missing events go: the node's broker-event handler (``node.on_broker_event``).
        clock: now, UTC ns (stamps local corrections and the :class:`Reconciled` event).
        bus: where :class:`Reconciled` is published, or ``None``.
        attribute: the tag of an adopted order that is not a bracket child (default: ``manual``).
    """

    def __init__(
        self,
        orders: OrderManager,
        positions: PositionManager,
        broker: BrokerReports,
        *,
        account_id: AccountId,
        emit: Callable[[object], None],
        clock: Callable[[], int],
        bus: MessageBus | None = None,
        attribute: Attribution | None = None,
    ) -> None:
        self.orders = orders
        self.positions = positions
        self.broker = broker
        self.account_id = account_id
        self._emit = emit
        self._clock = clock
        self._bus = bus
        self._attribute = attribute

    async def reconcile(self, since_ns: int, *, done: Collection[str] = ()) -> ReconcileReport:
        """Ask the broker for its reports and emit what the node missed (module docstring, steps 1-5).

        Args:
            since_ns: ask for fills (and history) from this time, UTC ns: the newest journaled fill's time, or the
                session start on a first start.
            done: client order ids the journal already has as done (:attr:`propdesk.storage.recovery.RecoveredState.
                done_order_ids`): the broker's history of them is not adopted again.

        Raises:
            Whatever the broker's report calls raise (nothing is emitted then).
        """
        started_ns = self._clock()
        # oldest view first: an order accepted or filled while the reports are read shows in a later one (an order the
        # history saw working and the open orders no longer have filled since, so its fills are in the fill reports)
        history = await self.broker.order_history(since_ns) if isinstance(self.broker, OrderHistory) else None
        open_reports = await self.broker.order_reports()
        fill_reports = await self.broker.fill_reports(since_ns)
        position_reports = await self.broker.position_reports()

        report = ReconcileReport(since_ns=since_ns)
        known: dict[ClientOrderId, OrderReport] = {}
        for r in [*(history or ()), *open_reports]:  # open reports are the freshest
            if r.account_id == self.account_id:
                known[self._cid(r)] = r
        open_cids = {self._cid(r) for r in open_reports if r.account_id == self.account_id}
        new_fills = [
            f
            for f in fill_reports
            if f.account_id == self.account_id and not self.positions.has_trade(self.account_id, f.trade_id)
        ]
        new_fills.sort(key=lambda f: f.ts_ns)  # stable: the broker's order within one time

        for cid in done:
            if self.orders.order(cid) is None:
                known.pop(ClientOrderId(cid), None)
        self._adopt(known, new_fills, report)
        self._align(known, report)
        for f in new_fills:
            cid = self._fill_cid(f)
            order = self.orders.order(cid)
            self._send(
                OrderFilled(
                    client_order_id=cid,
                    account_id=self.account_id,
                    ts_event_ns=f.ts_ns,
                    reconciled=True,
                    symbol=f.symbol,
                    side=f.side,
                    qty=f.qty,
                    price=f.price,
                    fee=f.fee,
                    trade_id=f.trade_id,
                    tag="" if order is None else order.tag,
                ),
                report,
            )
            report.fills.append(f.trade_id)
        self._close(known, open_cids, history is not None, report, started_ns)
        self._check_positions(position_reports, report)

        for text in report.discrepancies:
            log.warning("reconcile account %s: %s", self.account_id, text)
        if self._bus is not None:
            event = Reconciled(
                account_id=self.account_id,
                ts_ns=self._clock(),
                fills=len(report.fills),
                orders_adopted=len(report.adopted),
                events=len(report.events),
                discrepancies=tuple(report.discrepancies),
            )
            self._bus.publish(event.topic, event)
        return report

    # ------------------------------------------------------------------ steps

    @staticmethod
    def _cid(r: OrderReport) -> ClientOrderId:
        return r.client_order_id if r.client_order_id is not None else ClientOrderId(f"ext-{r.broker_order_id}")

    @staticmethod
    def _fill_cid(f: FillReport) -> ClientOrderId:
        return f.client_order_id if f.client_order_id is not None else ClientOrderId(f"ext-{f.broker_order_id}")

    def _send(self, event: OrderEvent, report: ReconcileReport) -> None:
        report.events.append(event)
        self._emit(event)

    def _adopt(
        self, known: dict[ClientOrderId, OrderReport], fills: Sequence[FillReport], report: ReconcileReport
    ) -> None:
        by_fill: dict[ClientOrderId, list[FillReport]] = {}
        for f in fills:
            by_fill.setdefault(self._fill_cid(f), []).append(f)
        unknown = {c for c in (*known, *by_fill) if self.orders.order(c) is None}
        for cid in sorted(unknown, key=lambda c: (len(c), c)):  # a bracket entry before its children
            r = known.get(cid)
            order = self._order_of(cid, r, by_fill.get(cid, []))
            if order is None and self._expect_unpriced_child(cid, r):
                continue
            if order is None:
                report.discrepancies.append(f"order {cid} at the broker cannot be rebuilt (no price for its type)")
                continue
            order.apply(
                OrderSubmitted(
                    client_order_id=cid, account_id=self.account_id, ts_event_ns=order.ts_init_ns, reconciled=True
                )
            )
            self.orders.restore([order])
            report.adopted.append(cid)
            log.info(
                "reconcile: adopted %s order %s (%s %s %s)", order.tag, cid, order.side.name, order.qty, order.symbol
            )

    def _expect_unpriced_child(self, cid: ClientOrderId, r: OrderReport | None) -> bool:
        """A native bracket child the broker holds suspended and unpriced while its (market) entry works: not a
        discrepancy; the order manager tracks it from the event that prices it, as it would live."""
        parent_id = bracket_parent_id(cid)
        if r is None or r.status is not OrderStatus.SUSPENDED or parent_id is None:
            return False
        parent = self.orders.order(parent_id)
        self.orders.expect_native_child(
            cid,
            parent_id=parent_id,
            symbol=r.symbol,
            side=r.side,
            qty=r.qty,
            order_type=r.order_type,
            tag=parent.tag if parent is not None else MANUAL_TAG,
        )
        return True

    def _order_of(self, cid: ClientOrderId, r: OrderReport | None, fills: Sequence[FillReport]) -> Order | None:
        parent_id = bracket_parent_id(cid)
        parent = None if parent_id is None else self.orders.order(parent_id)
        if parent is None:
            parent_id = None
        if r is not None:
            symbol, side, qty, typ, ts = r.symbol, r.side, r.qty, r.order_type, r.ts_ns
            limit, stop = r.limit_price, r.stop_price
            fallback = r.avg_fill_price
        else:
            f0 = fills[0]
            symbol, side, ts = f0.symbol, f0.side, f0.ts_ns
            qty = sum(f.qty for f in fills)
            typ = OrderType.MARKET
            if parent is not None:
                typ = OrderType.STOP if cid.removeprefix(parent.client_order_id).startswith("-sl") else OrderType.LIMIT
            limit = stop = None
            fallback = f0.price
        if parent is not None:
            fallback = fallback or (parent.fills[0].price if parent.fills else parent.limit_price or parent.stop_price)
        if typ in (OrderType.LIMIT, OrderType.STOP_LIMIT) and limit is None:
            limit = fallback
        if typ in (OrderType.STOP, OrderType.STOP_LIMIT) and stop is None:
            stop = fallback
        if (typ in (OrderType.LIMIT, OrderType.STOP_LIMIT) and limit is None) or (
            typ in (OrderType.STOP, OrderType.STOP_LIMIT) and stop is None
        ):
            return None
        if parent is not None:
            tag = parent.tag
        elif cid.startswith("ext-"):
            tag = MANUAL_TAG
        else:
            tag = (self._attribute(cid, symbol) if self._attribute is not None else None) or MANUAL_TAG
        return Order(
            client_order_id=cid,
            account_id=self.account_id,
            symbol=symbol,
            side=side,
            qty=qty,
            order_type=typ,
            limit_price=limit,
            stop_price=stop,
            trail_ticks=1 if typ is OrderType.TRAILING_STOP else None,  # the distance is not reported
            tif=TimeInForce.GTC if parent is not None else TimeInForce.DAY,
            tag=tag,
            reduce_only=parent is not None,
            parent_id=parent_id,
            ts_init_ns=ts,
        )

    def _align(self, known: dict[ClientOrderId, OrderReport], report: ReconcileReport) -> None:
        acct = self.account_id
        for cid, r in known.items():
            o = self.orders.order(cid)
            if o is None or o.is_done:
                continue
            ts = r.ts_ns or self._clock()
            qty = r.qty if r.qty != o.qty and r.qty >= o.filled_qty else None
            lp = r.limit_price if r.limit_price is not None and o.limit_price not in (None, r.limit_price) else None
            sp = r.stop_price if r.stop_price is not None and o.stop_price not in (None, r.stop_price) else None
            if qty is not None or lp is not None or sp is not None:
                self._send(
                    OrderUpdated(
                        client_order_id=cid,
                        account_id=acct,
                        ts_event_ns=ts,
                        reconciled=True,
                        qty=qty,
                        limit_price=lp,
                        stop_price=sp,
                    ),
                    report,
                )
            if r.status is OrderStatus.SUSPENDED and o.status is OrderStatus.SUBMITTED:
                self._send(
                    OrderSuspended(
                        client_order_id=cid,
                        account_id=acct,
                        ts_event_ns=ts,
                        reconciled=True,
                        broker_order_id=r.broker_order_id,
                    ),
                    report,
                )
            elif r.status in _LIVE and o.status in (OrderStatus.SUBMITTED, OrderStatus.SUSPENDED):
                self._send(
                    OrderAccepted(
                        client_order_id=cid,
                        account_id=acct,
                        ts_event_ns=ts,
                        reconciled=True,
                        broker_order_id=r.broker_order_id,
                    ),
                    report,
                )
            elif r.status in _LIVE and o.status is OrderStatus.PENDING_CANCEL:
                reason = "still working at the broker (reconciled)"
                self._send(
                    OrderCancelRejected(
                        client_order_id=cid, account_id=acct, ts_event_ns=ts, reconciled=True, reason=reason
                    ),
                    report,
                )
            elif r.status in _LIVE and o.status is OrderStatus.PENDING_UPDATE:
                reason = "modify outcome unknown; the broker's figures were applied (reconciled)"
                self._send(
                    OrderModifyRejected(
                        client_order_id=cid, account_id=acct, ts_event_ns=ts, reconciled=True, reason=reason
                    ),
                    report,
                )

    def _close(
        self,
        known: dict[ClientOrderId, OrderReport],
        open_cids: set[ClientOrderId],
        has_history: bool,
        report: ReconcileReport,
        started_ns: int,
    ) -> None:
        """Close the working orders the broker no longer has. An order whose last event came after the reconcile
        started (``started_ns``, UTC ns: submitted or acknowledged while the reports were read) is left to its own
        events: the reports may predate it."""
        now = self._clock()
        for o in self.orders.open_orders():
            cid = o.client_order_id
            if cid in open_cids or o.ts_last_ns > started_ns:
                continue
            r = known.get(cid)
            if r is not None and r.status is OrderStatus.FILLED:
                report.discrepancies.append(
                    f"order {cid}: the broker says filled {r.filled_qty}/{r.qty}, the node has {o.filled_qty}: "
                    f"fills missing from the broker's fill reports since {report.since_ns}"
                )
                continue
            ts = now if r is None else (r.ts_ns or now)
            cls = _CLOSE_EVENTS.get(r.status) if r is not None else None
            if cls is OrderExpired:
                event: OrderEvent = OrderExpired(
                    client_order_id=cid, account_id=self.account_id, ts_event_ns=ts, reconciled=True
                )
            elif cls is OrderRejected:
                event = OrderRejected(
                    client_order_id=cid,
                    account_id=self.account_id,
                    ts_event_ns=ts,
                    reconciled=True,
                    reason="rejected at the broker (reconciled)",
                )
            else:
                reason = (
                    "canceled at the broker (reconciled)"
                    if cls is OrderCanceled
                    else "unknown at the broker (reconciled)"
                    if has_history and r is None
                    else "no longer open at the broker (reconciled)"
                )
                event = OrderCanceled(
                    client_order_id=cid, account_id=self.account_id, ts_event_ns=ts, reconciled=True, reason=reason
                )
            self._send(event, report)
            report.closed.append(cid)

    def _check_positions(self, reports: Sequence[PositionReport], report: ReconcileReport) -> None:
        acct = self.account_id
        seen: set[str] = set()
        for p in reports:
            if p.account_id != acct:
                continue
            seen.add(p.symbol)
            pos = self.positions.position(acct, p.symbol)
            qty = 0 if pos is None else pos.signed_qty
            avg: Price | None = None if pos is None or not qty else pos.avg_price
            if qty != p.signed_qty or (p.signed_qty and avg != p.avg_price):
                report.discrepancies.append(
                    f"position {p.symbol}: the broker has {p.signed_qty} @ {p.avg_price}, the node {qty} @ {avg}"
                )
        for pos in self.positions.open_positions(acct):
            if pos.symbol not in seen:
                report.discrepancies.append(
                    f"position {pos.symbol}: the node has {pos.signed_qty} @ {pos.avg_price}, the broker none"
                )
