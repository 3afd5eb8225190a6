"""The pre-trade gate: every order propdesk sends is checked here before it reaches the broker.

:class:`RiskGate` implements the order manager's :class:`~propdesk.execution.order_manager.PreTradeGate` protocol
(``check(order, manager) -> reason | None``). It is state-aware (``../shared/specs/risk-rules.md`` section 7.1):

* **HALTED**: every order is denied, except propdesk's own enforcement orders (see below). Cancels and the
  broker-level flatten and close commands do not pass through the gate at all.
* **REDUCING**: only reduce-only orders pass (section 6): the side opposite to the net position in that contract,
  and a size (open quantity) no larger than ``|position|`` minus the open quantity of the other working reducing
  orders of that contract. Two legs of one OCO pair or bracket can never both fill, so a group counts once, at
  its largest leg (a stop-loss and a take-profit of 2 on a position of 2 leave 0, not -2). A reduce-only order in
  REDUCING is not run through the PRE rules: the rules limit new risk, and a stale feed or a broken rule must
  never trap the trader in a position.
* **ACTIVE**: :meth:`RuleSet.check_order` on the account view (worst-case exposure counting working orders, micro
  weighting, MLL headroom against the stop distance, sessions, lockouts, trade limits are the rules' business);
  anything above WARN denies, with every rule id and reason. A rule that raises denies (the rule set turns it into
  REDUCE_ONLY); so does a check that takes longer than ``timeout_s`` (measured around the synchronous call: the
  core never waits on I/O, so a slow check is a bug or an overloaded machine, and the order is refused).

**Enforcement orders.** The enforcer's flatten uses broker commands (cancel all, close position) that bypass the
order path; only its fallback, an opposite market order (section 7.4 step 3), is an order. The enforcer registers
such an order with :meth:`RiskGate.authorize_enforcement` before submitting it; a registered order passes in any
state as long as it only reduces the position. The flag is the registration, not the tag, so a strategy cannot
slip an order past the gate by copying an enforcement tag (``risk``, ``risk:<RULE>``, :data:`ENFORCEMENT_TAG`).

Every decision goes to the audit log with the order and the account view (:mod:`propdesk.risk.audit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import ENFORCEMENT_TAG, Order
from propdesk.model.records import AuditEntry
from propdesk.risk.audit import AuditLog, order_inputs, safe_record, view_inputs
from propdesk.risk.decisions import Action, Decision, TradingState

if TYPE_CHECKING:
    from propdesk.core.clock import Clock
    from propdesk.execution.order_manager import OrderManager
    from propdesk.risk.rules.base import AccountView, RuleSet

__all__ = ["ENFORCEMENT_TAG", "RiskGate", "TradingStateSource", "reduce_only_violation"]


class TradingStateSource(Protocol):
    """Where the gate reads the account's trading state (the :class:`~propdesk.risk.guard.AccountGuard`)."""

    @property
    def state(self) -> TradingState:
        """The account's trading state now."""
        ...

    @property
    def state_reasons(self) -> tuple[str, ...]:
        """Why the account is in that state (rule ids, conditions, lockouts), most restrictive first."""
        ...


def _leaves(order: Order) -> int:
    return order.qty - order.filled_qty


def _group_key(o: Order) -> str:
    if o.parent_id is not None:
        return f"bracket:{o.parent_id}"
    if o.linked_ids:
        return "oco:" + min((o.client_order_id, *o.linked_ids))
    return f"order:{o.client_order_id}"


def _linked(a: Order, b: Order) -> bool:
    return (
        a.client_order_id in b.linked_ids
        or b.client_order_id in a.linked_ids
        or (a.parent_id is not None and a.parent_id == b.parent_id)
    )


def reduce_only_violation(order: Order, position_qty: int, open_orders: Iterable[Order]) -> str | None:
    """Why ``order`` is not reduce-only, or ``None`` when it is (risk-rules.md section 6).

    Args:
        order: the order (its open quantity ``qty - filled_qty`` is what counts).
        position_qty: the signed net position in ``order.symbol``, contracts.
        open_orders: open orders of the account (others than ``order`` and its OCO/bracket siblings count as
            "other working reducing orders" when on the same side and contract; a group counts once, at its
            largest open quantity).
    """
    leaves = _leaves(order)
    if position_qty == 0:
        return f"reduce-only: no position in {order.symbol} to reduce ({order.side.name} {leaves})"
    if int(order.side) * position_qty > 0:
        return f"reduce-only: {order.side.name} {leaves} {order.symbol} adds to the position of {position_qty}"
    groups: dict[str, int] = {}
    for o in open_orders:
        if (
            o.client_order_id == order.client_order_id
            or o.symbol != order.symbol
            or o.side is not order.side
            or not o.is_open
            or _linked(o, order)
        ):
            continue
        key = _group_key(o)
        groups[key] = max(groups.get(key, 0), _leaves(o))
    other = sum(groups.values())
    room = abs(position_qty) - other
    if leaves > room:
        return (
            f"reduce-only: {order.side.name} {leaves} {order.symbol} exceeds the position of {position_qty} "
            f"minus {other} already working to reduce it (room {max(room, 0)})"
        )
    return None


class _Unbound:
    """The state before a guard is bound: fail closed (risk-rules.md section 7.6: no daemon, no orders)."""

    state = TradingState.HALTED
    state_reasons = ("risk guard not running",)


class RiskGate:
    """The pre-trade gate of one account (see the module docstring).

    Args:
        rules: the account's rule set (PRE rules are used).
        view: the account view rules read (positions, working orders, PnL).
        clock: stamps audit entries.
        account_id: the account.
        audit: where every decision is recorded (``None``: not recorded).
        state: the trading-state source; until one is bound (:meth:`bind_state`) every order is denied.
        timeout_s: a rule check that takes longer denies the order (default 0.05 s).
        perf_ns: the monotonic timer used to measure the check (``time.perf_counter_ns``; tests inject one).
    """

    def __init__(
        self,
        rules: RuleSet,
        view: AccountView,
        clock: Clock,
        *,
        account_id: AccountId,
        audit: AuditLog | None = None,
        state: TradingStateSource | None = None,
        timeout_s: float = 0.05,
        perf_ns: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.rules = rules
        self.view = view
        self._clock = clock
        self.account_id = account_id
        self._audit = audit
        self._state: TradingStateSource = state if state is not None else _Unbound()
        self.timeout_ns = int(timeout_s * 1e9)
        self._perf_ns = perf_ns
        self._enforcement: set[ClientOrderId] = set()
        self.allowed = 0
        """Orders passed so far."""
        self.denied = 0
        """Orders denied so far."""

    def bind_state(self, source: TradingStateSource) -> None:
        """Read the trading state from ``source`` from now on (the account guard binds itself)."""
        self._state = source

    def authorize_enforcement(self, order: Order) -> None:
        """Register ``order`` as propdesk's own enforcement order: it passes in any state if it only reduces."""
        self._enforcement.add(order.client_order_id)

    def is_enforcement(self, order: Order) -> bool:
        """True when ``order`` was registered with :meth:`authorize_enforcement`."""
        return order.client_order_id in self._enforcement

    # ------------------------------------------------------------------------------------------------ check

    def check(self, order: Order, manager: OrderManager) -> str | None:
        """A reason to deny ``order``, or ``None`` to let it pass (the ``PreTradeGate`` protocol).

        Never raises for a rule failure (that is a denial); the order manager also denies if this raises.
        """
        state = self._state.state
        if order.client_order_id in self._enforcement:
            reason = reduce_only_violation(order, self.view.position_qty(order.symbol), ())
            return self._done(order, state, reason, ("enforcement order",) if reason is None else (reason,))
        if state is TradingState.HALTED:
            why = "; ".join(self._state.state_reasons) or "no reason recorded"
            reason = f"account HALTED ({why}): only propdesk's own flatten and cancels pass"
            return self._done(order, state, reason, (reason,))
        if state is TradingState.REDUCING:
            open_orders = manager.open_orders(order.symbol)
            violation = reduce_only_violation(order, self.view.position_qty(order.symbol), open_orders)
            if violation is not None:
                why = "; ".join(self._state.state_reasons) or "no reason recorded"
                reason = f"account REDUCING ({why}): {violation}"
                return self._done(order, state, reason, (reason,))
            return self._done(order, state, None, ("reduce-only order while REDUCING",))
        t0 = self._perf_ns()
        verdict = self.rules.check_order(self.view, order)
        elapsed = self._perf_ns() - t0
        if elapsed > self.timeout_ns:
            reason = (
                f"pre-trade check took {elapsed / 1e6:.3f} ms (limit {self.timeout_ns / 1e6:.3f} ms): "
                "denied (a timeout is a denial)"
            )
            return self._done(order, state, reason, (reason, *_reasons(verdict.decisions)))
        if verdict.allowed:
            return self._done(order, state, None, _reasons(verdict.decisions), verdict.action)
        return self._done(order, state, verdict.reasons, _reasons(verdict.decisions))

    def _done(
        self,
        order: Order,
        state: TradingState,
        reason: str | None,
        reasons: tuple[str, ...],
        action: Action | None = None,
    ) -> str | None:
        if reason is None:
            self.allowed += 1
            act = (action or Action.ALLOW).name
        else:
            self.denied += 1
            act = Action.DENY.name
        if self._audit is not None:
            inputs = view_inputs(self.view)
            inputs["order"] = order_inputs(order)
            safe_record(
                self._audit,
                AuditEntry(
                    ts_ns=self._clock.timestamp_ns(),
                    account=self.account_id,
                    point="pre",
                    action=act,
                    state=state.name,
                    reasons=reasons,
                    inputs=inputs,
                ),
            )
        return reason


def _reasons(decisions: Iterable[Decision]) -> tuple[str, ...]:
    return tuple(f"{d.rule_id}: {d.reason}" for d in decisions)
