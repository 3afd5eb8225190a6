"""The restart sequence of a node with a journal, in one place (issue 5 "Recovery"; ARCHITECTURE.md principle 7).

On start, before the node trades:

1. :func:`recover_node` reads the journal's state of the node's account
   (:func:`~propdesk.storage.recovery.load_recovery`) and puts it into the freshly built node
   (:func:`~propdesk.storage.recovery.apply_recovery`): open orders, positions rebuilt from the journaled fills, and,
   with a risk engine, its :class:`~propdesk.risk.state.AccountState` (day counters, peaks, end-of-day balances) and
   its lockout store (active lockouts). Call it after the node is built and **before** the journal is attached to the
   node's bus, the risk engine is started, strategies are added and the broker is connected.
2. The caller attaches the journal, starts the risk engine and holds the account guard REDUCING with
   :func:`hold_until_reconciled` (a connection condition, lifted only by the guard's ``reconciled()``).
3. The caller connects the broker; the broker's own first reconcile starts at the journal's newest fill
   (:attr:`NodeRecovery.last_fill_ns`, e.g. ``ProjectXBroker(last_fill_ns=...)``).
4. :func:`reconcile_node` runs the :class:`~propdesk.risk.reconcile.Reconciler` from that same time, with the
   journal's done orders excluded from adoption; after a clean report the caller calls ``guard.reconciled()``.
5. Strategies are warmed up (orders refused) and added; only then do they trade.

Users: :class:`propdesk.node.builder.BuiltNode` (steps 1 and 4 for ``propdesk run --broker projectx`` and ``propdesk
risk --broker projectx``) and the crash-test driver (``tests/integration/crash_driver.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from propdesk.model.events import BrokerDisconnected
from propdesk.risk.reconcile import Attribution, BrokerReports, Reconciler, ReconcileReport
from propdesk.storage.recovery import RecoveredState, RecoveryReport, apply_recovery, load_recovery
from propdesk.storage.repositories import Repository

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from propdesk.node.trading_node import TradingNode
    from propdesk.risk.engine import RiskEngine

__all__ = ["STARTUP_REASON", "NodeRecovery", "hold_until_reconciled", "reconcile_node", "recover_node"]

log = logging.getLogger("propdesk.node.recovery")

STARTUP_REASON = "node starting: reduce-only until the journal's state is reconciled with the broker"
"""The reason of the connection condition :func:`hold_until_reconciled` sets."""


@dataclass(frozen=True, slots=True)
class NodeRecovery:
    """What :func:`recover_node` read and applied.

    Attributes:
        state: the journal's state of the account (:class:`~propdesk.storage.recovery.RecoveredState`).
        report: what was applied (:class:`~propdesk.storage.recovery.RecoveryReport`).
    """

    state: RecoveredState
    report: RecoveryReport

    @property
    def last_fill_ns(self) -> int | None:
        """Event time of the journal's newest fill (UTC ns): where reconciliation asks the broker for fills from;
        ``None`` on a first start (empty journal)."""
        return self.state.last_fill_ts_ns

    @property
    def done_order_ids(self) -> frozenset[str]:
        """Client order ids the journal has as done at or after its newest fill (not adopted again)."""
        return self.state.done_order_ids


async def recover_node(
    node: TradingNode,
    source: Repository | AsyncEngine,
    *,
    now_ns: int,
    risk: RiskEngine | None = None,
    day_start_ns: int | None = None,
) -> NodeRecovery:
    """Read the journal's state of ``node``'s account and apply it to ``node`` (step 1 of the module docstring).

    Args:
        node: a freshly built node: no journal attached, risk engine attached (``TradingNode(risk=engine.attach)``)
            but not started, no strategy, broker not connected.
        source: the journal's repository, or its (migrated) async engine.
        now_ns: the restart time, UTC ns (lockouts active at it are restored).
        risk: the node's risk engine: its account state and lockout store receive the recovered figures.
        day_start_ns: the current trading day's start (UTC ns) for the portfolio's day baseline, or ``None``.

    Returns:
        The state read and the report of what was applied (its ``discrepancies`` are logged as warnings).

    Raises:
        sqlalchemy errors: the journal cannot be read (the node must not trade then).
        ConfigError: the risk engine is not attached to ``node``.
        OrderManagerError, ContractError, InvalidPriceError, LockoutStoreError: from
            :func:`~propdesk.storage.recovery.apply_recovery` (a corrupt journal or a node that is not fresh).
    """
    repo = source if isinstance(source, Repository) else Repository(source)
    state = await load_recovery(repo, int(node.account_id), now_ns)
    report = apply_recovery(
        node,
        state,
        account_state=None if risk is None else risk.state,
        lockout_store=None if risk is None else risk.store,
        day_start_ns=day_start_ns,
    )
    for text in report.discrepancies:
        log.warning("recovery of account %s: %s", node.account_id, text)
    return NodeRecovery(state, report)


def hold_until_reconciled(risk: RiskEngine | None, *, ts_ns: int, reason: str = STARTUP_REASON) -> None:
    """Put a started risk engine's account guard in REDUCING (its connection condition) until the guard's
    ``reconciled()`` is called after a clean reconcile (step 2). No-op without a risk engine or before it started.
    """
    if risk is None or not risk.running:
        return
    guard = risk.guard
    guard.on_disconnected(BrokerDisconnected(guard.account_id, ts_ns, reason))


async def reconcile_node(
    node: TradingNode,
    broker: BrokerReports,
    *,
    since_ns: int,
    done: Collection[str] = (),
    clock: Callable[[], int] | None = None,
    attribute: Attribution | None = None,
) -> ReconcileReport:
    """Run the :class:`~propdesk.risk.reconcile.Reconciler` on ``node`` against ``broker``'s reports (step 4).

    Args:
        node: the node (its order and position managers; missing events go through ``node.on_broker_event``).
        broker: the broker's reports (``order_reports`` / ``fill_reports`` / ``position_reports``).
        since_ns: fills from this time (UTC ns): :attr:`NodeRecovery.last_fill_ns`, or the session start.
        done: :attr:`NodeRecovery.done_order_ids`.
        clock: now, UTC ns (default: the node's clock).
        attribute: the tag of an adopted order (default: ``manual``).

    Raises:
        Whatever the broker's report calls raise (nothing is emitted then).
    """
    rec = Reconciler(
        node.orders,
        node.positions,
        broker,
        account_id=node.account_id,
        emit=node.on_broker_event,
        clock=clock if clock is not None else node.clock.timestamp_ns,
        bus=node.bus,
        attribute=attribute,
    )
    return await rec.reconcile(since_ns, done=done)
