"""The enforcer: carries out what the account guard decided -- flatten, close one position, cancel opening orders --
and keeps at it until the broker confirms.

The flatten procedure (``../shared/specs/risk-rules.md`` section 7.4):

1. **Persist first.** Lockouts are written to the :class:`~propdesk.risk.lockouts.LockoutStore` before any command
   (the guard has already set its in-memory trading state, so the gate denies new orders). A store that fails is
   logged and audited, and the flatten goes on: getting flat matters more than the record.
2. **Cancel, then close.** ``cancel_all`` (every working order at the broker, bracket children and orders placed by
   hand included), then a market close of each open position (``close_position``), through the
   :class:`~propdesk.execution.order_manager.OrderManager`. These are broker commands, not orders: they never pass
   the pre-trade gate.
3. **Verify.** Flat means no position and no open order, as seen by the :class:`ExposureSource` (by default the
   position manager and the order manager; a reconciler may supply one backed by broker reports). The check runs
   after every order event while a job is pending and at each retry.
4. **Retry with backoff** (1 s, 2 s, 4 s ... capped at 60 s, via clock alerts: nothing here sleeps or awaits) until
   flat. Each retry re-sends cancel-all and the closes and publishes :class:`~propdesk.risk.events.FlattenRetry` (an
   alert). From round ``fallback_after + 1`` on, it also sends an opposite market order per position (tag
   ``risk:<RULE>``, registered with the gate so it passes in HALTED). It never gives up.

**Attribution.** Every order and fill of the enforcement carries the tag of the rule that caused it,
``risk:<RULE>`` (:func:`~propdesk.model.orders.enforcement_tag`; ``risk`` alone for a cause that is not a rule, such
as a stale feed): the broker's close orders through ``OrderManager.close_position(tag=...)``, the fallback orders and
attached stops directly. The journal, the console and the exports show that tag, and the position manager closes
the strategies' positions with those fills (cause ``RISK_FLATTEN``).

When flat, :class:`~propdesk.risk.events.AccountFlattened` is published. ``close_position`` does the same for one
contract (CLOSE_POSITION: cancel that contract's working orders, close it; or close only an excess quantity), and
``cancel_opening_orders`` serves REDUCE_ONLY. Every command and result goes to the audit log (step ``persist``,
``cancel_all``, ``close_position``, ``verify``, ``retry``, ``fallback_order``, ``cancel_opening``).

Everything is synchronous: from the guard's call to ``broker.close_position`` there is no wait (ARCHITECTURE.md:
the close order leaves well under a millisecond after the fill). Events and audit entries are written after the
commands have left. The simulated broker answers inside those calls, so every method is re-entrant: a job that
completes during its own command round is finished once the round is over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from propdesk.core import topics
from propdesk.core.backoff import Backoff
from propdesk.core.bus import MessageBus, Subscription
from propdesk.core.errors import PropdeskError
from propdesk.core.topics import Priority
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import Order, TimeInForce, enforcement_tag
from propdesk.model.price import Price
from propdesk.model.records import AuditEntry, Lockout
from propdesk.risk.audit import AuditLog, safe_record
from propdesk.risk.events import AccountFlattened, FlattenRetry, PositionClosedByRisk, RiskEvent
from propdesk.risk.gate import TradingStateSource
from propdesk.risk.lockouts import LockoutStore

if TYPE_CHECKING:
    from propdesk.core.clock import Clock
    from propdesk.core.timers import TimeEvent
    from propdesk.execution.order_manager import OrderManager
    from propdesk.execution.positions import PositionManager
    from propdesk.risk.gate import RiskGate

__all__ = ["DEFAULT_BACKOFF", "DEFAULT_BACKOFF_S", "Enforcer", "ExposureSource", "ManagedExposure"]

log = logging.getLogger("propdesk.risk.enforcer")

DEFAULT_BACKOFF: Final = Backoff(1.0, 2.0, 60.0)
"""Wait after command round k (1-based): 1 s, 2 s, 4 s ... capped at 60 s (risk-rules.md section 7.4)."""

DEFAULT_BACKOFF_S: Final[tuple[float, ...]] = tuple(DEFAULT_BACKOFF.ceiling(k) for k in range(1, 8))
""":data:`DEFAULT_BACKOFF` as a table, ``(1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)`` (the last repeated)."""


class ExposureSource(Protocol):
    """What the enforcer verifies against: the account's open positions and open orders."""

    def open_positions(self) -> dict[str, int]:
        """Signed contracts by symbol, non-flat positions only."""
        ...

    def open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        """Orders sent or working (not terminal), of ``symbol`` when given."""
        ...


class ManagedExposure:
    """An :class:`ExposureSource` over the node's position manager and order manager (one account)."""

    def __init__(self, positions: PositionManager, orders: OrderManager) -> None:
        self._positions = positions
        self._orders = orders
        self._account = orders.account_id

    def open_positions(self) -> dict[str, int]:
        """Signed contracts by symbol from the position manager."""
        return {p.symbol: p.signed_qty for p in self._positions.iter_open(self._account) if p.signed_qty}

    def open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        """Open orders from the order manager."""
        return self._orders.open_orders(symbol)


@dataclass(slots=True)
class _Job:
    job_id: int
    symbol: str | None  # None: account flatten
    reason: str
    started_ns: int
    tag: str = "risk"  # the tag of its orders and fills: risk:<RULE>
    target_abs: int = 0  # close job: done when |position| <= target_abs
    full: bool = True  # close job: also cancel the contract's working orders and wait for them
    attempt: int = 0
    timer: str | None = None
    done: bool = False


class _StepLog:
    """Records each command of a round in the audit log as it is sent (queued by the guard while it handles an
    event, so nothing is written before the commands have left)."""

    __slots__ = ("_enforcer", "_job")

    def __init__(self, enforcer: Enforcer, job: _Job) -> None:
        self._enforcer = enforcer
        self._job = job

    def append(self, item: tuple[str, str, dict[str, object]]) -> None:
        step, result, inputs = item
        job = self._job
        inputs.update(job=job.job_id, attempt=job.attempt, reason=job.reason)
        self._enforcer._record("enforce", step.upper(), (result,), inputs, step=step)


class Enforcer:
    """Carries out flattens, closes and reduce-only cancels for one account (see the module docstring).

    Args:
        bus: where :class:`AccountFlattened`, :class:`PositionClosedByRisk` and :class:`FlattenRetry` are
            published; the enforcer listens to ``events.order.*`` (priority -100, after everyone else) to verify
            pending jobs as soon as the broker answers (a no-op while no job is pending).
        clock: retry alerts and timestamps.
        orders: the account's order manager (commands go through it to the broker).
        exposure: what "flat" is checked against (default :class:`ManagedExposure` needs ``positions``).
        positions: the position manager, used for the default exposure when ``exposure`` is not given.
        store: where lockouts are persisted (``None``: not persisted; tests and dry runs only).
        audit: where every step is recorded.
        gate: the pre-trade gate; fallback market orders are registered with it (without a gate there is no
            fallback order: only the broker commands are repeated).
        backoff_s: waits between rounds: a :class:`~propdesk.core.backoff.Backoff` (default
            :data:`DEFAULT_BACKOFF`; its ``max_attempts`` is ignored: rounds go on until flat) or a table of seconds,
            the last repeated.
        fallback_after: command rounds before opposite market orders are added (default 3).

    Raises:
        ValueError: neither ``exposure`` nor ``positions`` given, an empty or non-positive backoff, or a negative
            ``fallback_after``.
    """

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        orders: OrderManager,
        *,
        exposure: ExposureSource | None = None,
        positions: PositionManager | None = None,
        store: LockoutStore | None = None,
        audit: AuditLog | None = None,
        gate: RiskGate | None = None,
        backoff_s: Backoff | Sequence[float] = DEFAULT_BACKOFF,
        fallback_after: int = 3,
    ) -> None:
        if exposure is None:
            if positions is None:
                raise ValueError("Enforcer needs an exposure source or a position manager")
            exposure = ManagedExposure(positions, orders)
        if not isinstance(backoff_s, Backoff) and (not backoff_s or any(b <= 0 for b in backoff_s)):
            raise ValueError(f"backoff_s must be non-empty and positive, got {tuple(backoff_s)!r}")
        if fallback_after < 0:
            raise ValueError(f"fallback_after must be >= 0, got {fallback_after}")
        self._bus = bus
        self._clock = clock
        self._orders = orders
        self.exposure = exposure
        self._store = store
        self._audit = audit
        self._gate = gate
        self._schedule_s = backoff_s if isinstance(backoff_s, Backoff) else None
        self._backoff_ns = () if isinstance(backoff_s, Backoff) else tuple(int(b * 1e9) for b in backoff_s)
        self.fallback_after = fallback_after
        self.account_id: AccountId = orders.account_id
        self._state: TradingStateSource | None = None
        self._publish: Callable[[RiskEvent], None] = self._publish_now
        self._write: Callable[[AuditEntry], None] = self._write_now
        self._write_later: Callable[[Callable[[], AuditEntry]], None] | None = None
        self._flatten: _Job | None = None
        self._closes: dict[str, _Job] = {}
        self._next_id = 1
        # Subscribed once, for good: subscribing per job would clear the bus's topic cache on the enforcement path.
        self._sub: Subscription | None = bus.subscribe(topics.ORDER_EVENTS_ONE, self._on_order_event, Priority.LATE)
        self._sending = 0
        self.rounds = 0
        """Command rounds sent so far (first rounds and retries)."""

    def bind_state(
        self,
        source: TradingStateSource,
        *,
        publish: Callable[[RiskEvent], None] | None = None,
        record: Callable[[AuditEntry], None] | None = None,
        record_later: Callable[[Callable[[], AuditEntry]], None] | None = None,
    ) -> None:
        """Read the trading state for audit entries from ``source``; with ``publish`` / ``record``, send events and
        audit entries through them (the guard binds itself so that its own breach events come first and everything
        goes out after the commands have left). With ``record_later``, audit entries are handed over as functions
        building them (queued in order, built once the commands have left: nothing is built on the enforcement
        path); it takes precedence over ``record``."""
        self._state = source
        if publish is not None:
            self._publish = publish
        if record is not None:
            self._write = record
        if record_later is not None:
            self._write_later = record_later

    # ------------------------------------------------------------------------------------------------ queries

    @property
    def flatten_pending(self) -> bool:
        """True while an account flatten is not yet verified."""
        return self._flatten is not None

    def close_pending(self, symbol: str) -> bool:
        """True while a close of ``symbol`` is not yet verified."""
        return symbol in self._closes

    @property
    def busy(self) -> bool:
        """True while any job (flatten or close) is pending."""
        return self._flatten is not None or bool(self._closes)

    def is_flat(self) -> bool:
        """No open position and no open order."""
        return not self.exposure.open_positions() and not self.exposure.open_orders()

    # ------------------------------------------------------------------------------------------------ commands

    def persist(self, lockouts: Iterable[Lockout]) -> bool:
        """Write ``lockouts`` to the store (before any flatten command). Returns False if any write failed (logged
        and audited; the caller goes on)."""
        ok = True
        for lo in lockouts:
            if self._store is None:
                self._record("enforce", "PERSIST", (f"no lockout store: {lo.rule_id} not persisted",), lo.to_dict())
                ok = False
                continue
            try:
                self._store.save(lo)
            except Exception as exc:
                ok = False
                log.critical("lockout %s of account %s NOT persisted: %s", lo.rule_id, lo.account, exc)
                self._record("enforce", "PERSIST", (f"failed: {type(exc).__name__}: {exc}",), lo.to_dict())
            else:
                self._record("enforce", "PERSIST", ("saved",), lo.to_dict)
        return ok

    def flatten(
        self, reason: str, *, lockouts: Iterable[Lockout] = (), force: bool = True, rule: str | None = None
    ) -> bool:
        """Persist ``lockouts``, then cancel every working order and close every position; verify and retry until
        flat.

        Args:
            reason: why (rule ids and reasons), for events and the audit log.
            lockouts: written to the store before any command.
            force: start even when already flat (a new breach: the verification publishes AccountFlattened at
                once). With False nothing happens when flat (the guard's "stay flat" checks).
            rule: the id of the rule that caused it (``R11``): its orders and fills are tagged ``risk:R11``.

        Returns:
            True when a flatten was started; False when one is already pending or (``force=False``) the account is
            flat.
        """
        lockouts = tuple(lockouts)
        if lockouts:
            self.persist(lockouts)
        if self._flatten is not None:
            return False
        if not force and self.is_flat():
            return False
        job = self._new_job(None, reason, rule=rule)
        for close in list(self._closes.values()):  # absorbed by the flatten
            self._drop(close)
        self._flatten = job
        self._run_round(job)
        return True

    def close_position(
        self, symbol: str, reason: str, *, qty: int | None = None, force: bool = True, rule: str | None = None
    ) -> bool:
        """Close the position in ``symbol`` (CLOSE_POSITION: cancel the contract's working orders, close at market),
        or with ``qty`` only that many contracts of it (an excess: only the contract's opening orders are
        canceled). Verified and retried like a flatten. ``rule`` (``R5``) tags its orders and fills ``risk:R5``.

        Returns:
            True when started; False when a flatten or a close of ``symbol`` is pending, or (``force=False``) there
            is nothing to close.
        """
        if self._flatten is not None or symbol in self._closes:
            return False
        pos = self.exposure.open_positions().get(symbol, 0)
        if qty is None:
            if not force and pos == 0 and not self.exposure.open_orders(symbol):
                return False
            job = self._new_job(symbol, reason, rule=rule)
        else:
            if qty <= 0 or pos == 0:
                return False
            job = self._new_job(symbol, reason, target_abs=max(0, abs(pos) - qty), full=False, rule=rule)
        self._closes[symbol] = job
        self._run_round(job)
        return True

    def attach_stop(
        self, symbol: str, side: Side, qty: int, stop_price: Price, reason: str, *, rule: str | None = None
    ) -> str | None:
        """Send a reduce-only stop-market order of ``qty`` contracts of ``symbol`` on ``side`` at ``stop_price`` (R13
        ``attach_stop``: risk-rules.md section 5), tagged ``risk:<rule>``, registered with the gate as an
        enforcement order so it passes in any state. Recorded in the audit log (step ``attach_stop``).

        Returns:
            The stop's client order id, or ``None`` when it could not be built or sent (logged and audited; the
            rule closes the position after its second grace period).
        """
        inputs: dict[str, object] = {"symbol": symbol, "side": side.name, "qty": qty, "stop_price": str(stop_price)}
        try:
            order = self._orders.stop(
                symbol, side, qty, enforcement_tag(rule), stop_price, tif=TimeInForce.GTC, reduce_only=True
            )
            if self._gate is not None:
                self._gate.authorize_enforcement(order)
            self._orders.submit(order)
        except Exception as exc:
            log.exception("risk: attaching a stop on %s failed for account %s", symbol, self.account_id)
            failed = f"failed: {type(exc).__name__}: {exc}"
            self._record("enforce", "ATTACH_STOP", (failed, reason), inputs, step="attach_stop")
            return None
        inputs["client_order_id"] = str(order.client_order_id)
        result = f"{order.status.value}: {order.reason}" if order.reason else order.status.value
        self._record("enforce", "ATTACH_STOP", (result, reason), inputs, step="attach_stop")
        return str(order.client_order_id)

    def cancel_opening_orders(self, reason: str, symbol: str | None = None) -> list[str]:
        """Cancel every open order that would open or add to a position (REDUCE_ONLY, risk-rules.md section 5):
        an order on the side of the net position, or any order in a flat contract. Orders that reduce (stops,
        targets) stay. Returns the client order ids asked to cancel."""
        positions = self.exposure.open_positions()
        canceled: list[str] = []
        for o in list(self.exposure.open_orders(symbol)):
            if self._is_enforcement(o):
                continue
            pos = positions.get(o.symbol, 0)
            if pos != 0 and int(o.side) * pos < 0:
                continue
            try:
                if self._orders.cancel(o.client_order_id):
                    canceled.append(str(o.client_order_id))
            except PropdeskError as exc:
                log.warning("cannot cancel opening order %s: %s", o.client_order_id, exc)
        if canceled:
            self._record("enforce", "CANCEL", (reason,), {"canceled": canceled}, step="cancel_opening")
        return canceled

    def check(self) -> None:
        """Verify every pending job now and finish those that are done (called on order events)."""
        if self._sending:
            return
        job = self._flatten
        if job is not None and self._is_done(job):
            self._finish(job)
        for close in list(self._closes.values()):
            if self._is_done(close):
                self._finish(close)

    def cancel_jobs(self) -> None:
        """Stop every pending job (its timers and the order subscription), without publishing. For shutdown."""
        if self._flatten is not None:
            self._drop(self._flatten)
        for job in list(self._closes.values()):
            self._drop(job)

    # ------------------------------------------------------------------------------------------------ internals

    def _new_job(
        self, symbol: str | None, reason: str, *, target_abs: int = 0, full: bool = True, rule: str | None = None
    ) -> _Job:
        job = _Job(
            self._next_id,
            symbol,
            reason,
            self._clock.timestamp_ns(),
            enforcement_tag(rule),
            target_abs=target_abs,
            full=full,
        )
        self._next_id += 1
        return job

    def _on_order_event(self, _event: object) -> None:
        if self._flatten is not None or self._closes:
            self.check()

    def _is_enforcement(self, order: Order) -> bool:
        return self._gate is not None and self._gate.is_enforcement(order)

    def _is_done(self, job: _Job) -> bool:
        if job.symbol is None:
            return self.is_flat()
        pos = self.exposure.open_positions().get(job.symbol, 0)
        if abs(pos) > job.target_abs:
            return False
        if not job.full:
            return True
        return not self.exposure.open_orders(job.symbol)

    def _run_round(self, job: _Job) -> None:
        """Send one command round for ``job``, then verify (finish, or schedule the next check)."""
        job.attempt += 1
        self.rounds += 1
        positions = self.exposure.open_positions()
        open_ids = [str(o.client_order_id) for o in self.exposure.open_orders(job.symbol)] if job.attempt > 1 else []
        sent = _StepLog(self, job)
        fallback = job.attempt > self.fallback_after and self._gate is not None
        self._sending += 1
        try:
            if job.symbol is None:
                self._cancel_all(None, sent)
                for symbol in positions:
                    self._close(symbol, None, job.tag, sent)
                if fallback:
                    for symbol, qty in positions.items():
                        self._fallback_order(symbol, qty, abs(qty), job.tag, sent)
            else:
                symbol = job.symbol
                pos = positions.get(symbol, 0)
                excess = abs(pos) - job.target_abs
                if job.full:
                    self._cancel_all(symbol, sent)
                else:
                    self.cancel_opening_orders(job.reason, symbol)
                if excess > 0:
                    self._close(symbol, None if job.target_abs == 0 else excess, job.tag, sent)
                    if fallback:
                        self._fallback_order(symbol, pos, excess, job.tag, sent)
        finally:
            self._sending -= 1
        if job.attempt > 1:
            nxt = self._clock.timestamp_ns() + self._backoff(job.attempt)
            event = FlattenRetry(
                account_id=self.account_id,
                ts_ns=self._clock.timestamp_ns(),
                symbol=job.symbol,
                reason=job.reason,
                attempt=job.attempt,
                positions=tuple(sorted(positions.items())),
                open_orders=tuple(open_ids),
                next_retry_ns=nxt,
                fallback=fallback,
            )
            log.critical(
                "risk: account %s still not flat (%s); round %d sent", self.account_id, job.reason, job.attempt
            )
            self._publish(event)
        if self._is_done(job):
            self._finish(job)
        else:
            self._schedule(job)

    def _cancel_all(self, symbol: str | None, sent: _StepLog) -> None:
        try:
            self._orders.cancel_all(symbol)
        except Exception as exc:
            log.exception("risk: cancel_all(%s) failed for account %s", symbol, self.account_id)
            sent.append(("cancel_all", f"failed: {type(exc).__name__}: {exc}", {"symbol": symbol}))
        else:
            sent.append(("cancel_all", "sent", {"symbol": symbol}))

    def _close(self, symbol: str, qty: int | None, tag: str, sent: _StepLog) -> None:
        try:
            self._orders.close_position(symbol, qty, tag=tag)
        except Exception as exc:
            log.exception("risk: close_position(%s) failed for account %s", symbol, self.account_id)
            sent.append(("close_position", f"failed: {type(exc).__name__}: {exc}", {"symbol": symbol, "qty": qty}))
        else:
            sent.append(("close_position", "sent", {"symbol": symbol, "qty": qty}))

    def _fallback_order(self, symbol: str, pos: int, qty: int, tag: str, sent: _StepLog) -> None:
        assert self._gate is not None
        if pos == 0 or qty <= 0:
            return
        if any(self._is_enforcement(o) for o in self.exposure.open_orders(symbol)):
            return  # one already on its way
        side = self._side_to_reduce(pos)
        try:
            order = self._orders.market(symbol, side, qty, tag, reduce_only=True)
            self._gate.authorize_enforcement(order)
            self._orders.submit(order)
        except Exception as exc:
            log.exception("risk: fallback market order on %s failed for account %s", symbol, self.account_id)
            sent.append(("fallback_order", f"failed: {type(exc).__name__}: {exc}", {"symbol": symbol, "qty": qty}))
        else:
            sent.append(
                (
                    "fallback_order",
                    f"{order.status.value}: {order.reason}" if order.reason else order.status.value,
                    {"symbol": symbol, "qty": qty, "side": side.name, "client_order_id": str(order.client_order_id)},
                )
            )

    @staticmethod
    def _side_to_reduce(pos: int) -> Side:
        return Side.SELL if pos > 0 else Side.BUY

    def _backoff(self, attempt: int) -> int:
        if self._schedule_s is not None:
            return self._schedule_s.delay_ns(attempt)
        return self._backoff_ns[min(attempt, len(self._backoff_ns)) - 1]

    def _schedule(self, job: _Job) -> None:
        if job.done:
            return
        name = f"risk.enforce.{self.account_id}.{job.job_id}.{job.attempt}"
        job.timer = name
        self._clock.set_time_alert(name, self._clock.timestamp_ns() + self._backoff(job.attempt), self._on_due)

    def _job_of_timer(self, name: str) -> _Job | None:
        if self._flatten is not None and self._flatten.timer == name:
            return self._flatten
        for job in self._closes.values():
            if job.timer == name:
                return job
        return None

    def _on_due(self, event: TimeEvent) -> None:
        job = self._job_of_timer(event.name)
        if job is None or job.done:
            return
        job.timer = None
        if self._is_done(job):
            self._finish(job)
            return
        self._record(
            "enforce",
            "VERIFY",
            (f"not done after round {job.attempt}",),
            {
                "job": job.job_id,
                "positions": self.exposure.open_positions(),
                "open_orders": [str(o.client_order_id) for o in self.exposure.open_orders(job.symbol)],
            },
            step="verify",
        )
        self._run_round(job)

    def _finish(self, job: _Job) -> None:
        if job.done:
            return
        self._drop(job)
        now = self._clock.timestamp_ns()
        self._record(
            "enforce",
            "VERIFIED",
            ("flat" if job.symbol is None else f"{job.symbol} closed",),
            {"job": job.job_id, "attempts": job.attempt, "reason": job.reason, "started_ns": job.started_ns},
            step="verify",
        )
        if job.symbol is None:
            done: AccountFlattened | PositionClosedByRisk = AccountFlattened(
                account_id=self.account_id,
                ts_ns=now,
                reason=job.reason,
                started_ns=job.started_ns,
                attempts=job.attempt,
            )
        else:
            done = PositionClosedByRisk(
                account_id=self.account_id,
                ts_ns=now,
                symbol=job.symbol,
                reason=job.reason,
                started_ns=job.started_ns,
                attempts=job.attempt,
            )
        self._publish(done)

    def _publish_now(self, event: RiskEvent) -> None:
        self._bus.publish(event.topic, event)

    def _write_now(self, entry: AuditEntry) -> None:
        safe_record(self._audit, entry)

    def _drop(self, job: _Job) -> None:
        job.done = True
        self._orders.release_close_tag(job.symbol)  # its closes are done: a later foreign order is manual again
        if job.timer is not None:
            self._clock.cancel_timer(job.timer)
            job.timer = None
        if job.symbol is None:
            if self._flatten is job:
                self._flatten = None
        elif self._closes.get(job.symbol) is job:
            del self._closes[job.symbol]

    def close(self) -> None:
        """Stop every pending job and unsubscribe from the bus (shutdown)."""
        self.cancel_jobs()
        if self._sub is not None:
            self._bus.unsubscribe(self._sub)
            self._sub = None

    def _record(
        self,
        point: str,
        action: str,
        reasons: tuple[str, ...],
        inputs: Mapping[str, object] | Callable[[], Mapping[str, object]],
        *,
        step: str = "persist",
    ) -> None:
        """Audit one step (``inputs`` may be a function returning them, called when the entry is built)."""
        if self._audit is None:
            return
        state = self._state.state if self._state is not None else None
        ts = self._clock.timestamp_ns()
        account = self.account_id

        def build() -> AuditEntry:
            return AuditEntry(
                ts_ns=ts,
                account=account,
                point=point,
                action=action,
                state=state.name if state is not None else "",
                reasons=reasons,
                inputs=inputs() if callable(inputs) else inputs,
                step=step,
            )

        if self._write_later is not None:
            self._write_later(build)
        else:
            self._write(build())
