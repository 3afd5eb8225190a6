"""Every bus topic propdesk publishes or subscribes, and the bus priorities that order their handlers.

Topics are dot-separated (see :mod:`propdesk.core.bus` for the pattern syntax: ``*`` one segment, ``**`` one or
more trailing segments). Concrete topics are module constants; per-instrument topics are built by small functions
(:func:`bars`, :func:`quotes`, ...), which are called once per subscription or cached by the publisher (the node
caches its bar topics), never once per bar. Each entry names who publishes it and the payload type.

Market data (payloads from ``propdesk.model``):

=================================  ==========================  ==================================================
topic                              payload                     publisher
=================================  ==========================  ==================================================
``data.bars.<symbol>.<timeframe>`` ``Bar``                     the node (``TradingNode.publish_bar``); the bar
                                                               aggregators (``data.aggregation.feeds``)
``data.quotes.<symbol>``           ``QuoteTick``               the node, from the broker's market feed
``data.trades.<symbol>``           ``TradeTick``               the node, from the broker's market feed
``data.depth.<symbol>``            ``DepthUpdate``             the node, from the broker's market feed
=================================  ==========================  ==================================================

Events:

=======================================  ==========================  ============================================
topic                                    payload                     publisher
=======================================  ==========================  ============================================
``events.order.<kind>``                  ``OrderEvent`` subclasses   the order manager (``execution``)
``events.position.<kind>``               ``PositionEvent``           the position manager (account-wide netting)
``events.strategy.position.<cause>``     ``StrategyPositionChange``  the position manager (per strategy)
``events.broker.connected``              ``BrokerConnected``         the node, from the broker
``events.broker.disconnected``           ``BrokerDisconnected``      the node, from the broker
``events.broker.<EventClassName>``       any other broker event      the node, from the broker
``events.risk.<kind>``                   ``RiskEvent`` subclasses    risk (guard, enforcer, engine, audit)
``events.session.<kind>``                ``SessionRolled`` ...       the risk calendar's timers
``events.account.**``                    account records             none today; journaled when published
``events.error.handler``                 ``HandlerFailed``           the bus, when a handler raises
``events.error.order``                   ``OrderEventError``         the order manager, on a refused event
=======================================  ==========================  ============================================
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "ACCOUNT_EOD",
    "ACCOUNT_EVENTS",
    "ACCOUNT_REPORT",
    "ACCOUNT_SEEN",
    "ACCOUNT_SNAPSHOT",
    "ALL_BARS",
    "ALL_QUOTES",
    "ALL_TRADES",
    "BROKER_CONNECTED",
    "BROKER_DISCONNECTED",
    "BROKER_PREFIX",
    "COMMAND_RESULTS",
    "DESK_EVENTS",
    "HANDLER_ERROR",
    "ORDER_ACCEPTED",
    "ORDER_CANCELED",
    "ORDER_CANCEL_REJECTED",
    "ORDER_DENIED",
    "ORDER_ERROR",
    "ORDER_EVENTS",
    "ORDER_EVENTS_ONE",
    "ORDER_EXPIRED",
    "ORDER_FILLED",
    "ORDER_MODIFY_REJECTED",
    "ORDER_PENDING_CANCEL",
    "ORDER_PENDING_UPDATE",
    "ORDER_REJECTED",
    "ORDER_SUBMITTED",
    "ORDER_SUSPENDED",
    "ORDER_UPDATED",
    "POSITION_CHANGED",
    "POSITION_CLOSED",
    "POSITION_EVENTS",
    "POSITION_OPENED",
    "RISK_ACCOUNT_FLATTENED",
    "RISK_DECISION_LOGGED",
    "RISK_EVENT",
    "RISK_EVENTS",
    "RISK_FLATTEN_RETRY",
    "RISK_LOCKOUT_EXPIRED",
    "RISK_LOCKOUT_SET",
    "RISK_POSITION_CLOSED",
    "RISK_PREFIX",
    "RISK_RECONCILED",
    "RISK_RULE_BREACHED",
    "RISK_RULE_WARNED",
    "RISK_TRADING_STATE_CHANGED",
    "SESSION_ENTRY_CUTOFF",
    "SESSION_FLAT_TIME",
    "SESSION_ROLLED",
    "STRATEGY_EVENTS",
    "STRATEGY_PARAMS",
    "STRATEGY_POSITION_PREFIX",
    "STRATEGY_ROWS",
    "STRATEGY_STATE",
    "Priority",
    "bars",
    "bars_all_timeframes",
    "broker_event",
    "depth",
    "quotes",
    "strategy_position",
    "trades",
]

# --- market data ----------------------------------------------------------------------------------------------


def bars(symbol: str, timeframe: object) -> str:
    """``symbol``'s closed bars of ``timeframe`` (``str(timeframe)``, e.g. ``5m``): ``data.bars.ESZ5.5m``.

    Payload ``Bar``; published by the node and the bar aggregators; subscribed by strategies and risk views."""
    return f"data.bars.{symbol}.{timeframe}"


def bars_all_timeframes(symbol: str) -> str:
    """The pattern of ``symbol``'s bars of every timeframe: ``data.bars.ESZ5.*`` (the position manager's marks)."""
    return f"data.bars.{symbol}.*"


def quotes(symbol: str) -> str:
    """``symbol``'s top-of-book quotes: ``data.quotes.ESZ5``. Payload ``QuoteTick``; published by the node."""
    return f"data.quotes.{symbol}"


def trades(symbol: str) -> str:
    """``symbol``'s trade prints: ``data.trades.ESZ5``. Payload ``TradeTick``; published by the node."""
    return f"data.trades.{symbol}"


def depth(symbol: str) -> str:
    """``symbol``'s depth-of-book updates: ``data.depth.ESZ5``. Payload ``DepthUpdate``; published by the node."""
    return f"data.depth.{symbol}"


ALL_BARS: Final = "data.bars.**"
"""Every bar of every symbol and timeframe (the risk engine's bar marks)."""
ALL_QUOTES: Final = "data.quotes.**"
"""Every quote of every symbol (the account guard's and risk engine's marks)."""
ALL_TRADES: Final = "data.trades.**"
"""Every trade print of every symbol (the risk engine's marks)."""

# --- order events (published by the order manager; payload the named OrderEvent subclass) ----------------------

ORDER_DENIED: Final = "events.order.denied"
"""``OrderDenied``: the pre-trade gate refused an order before it reached the venue."""
ORDER_SUBMITTED: Final = "events.order.submitted"
"""``OrderSubmitted``."""
ORDER_ACCEPTED: Final = "events.order.accepted"
"""``OrderAccepted``."""
ORDER_SUSPENDED: Final = "events.order.suspended"
"""``OrderSuspended`` (an OCO child waiting for its parent's fill)."""
ORDER_REJECTED: Final = "events.order.rejected"
"""``OrderRejected``."""
ORDER_PENDING_UPDATE: Final = "events.order.pending_update"
"""``OrderPendingUpdate``."""
ORDER_PENDING_CANCEL: Final = "events.order.pending_cancel"
"""``OrderPendingCancel``."""
ORDER_UPDATED: Final = "events.order.updated"
"""``OrderUpdated``."""
ORDER_MODIFY_REJECTED: Final = "events.order.modify_rejected"
"""``OrderModifyRejected``."""
ORDER_CANCEL_REJECTED: Final = "events.order.cancel_rejected"
"""``OrderCancelRejected``."""
ORDER_CANCELED: Final = "events.order.canceled"
"""``OrderCanceled``."""
ORDER_EXPIRED: Final = "events.order.expired"
"""``OrderExpired``."""
ORDER_FILLED: Final = "events.order.filled"
"""``OrderFilled``: subscribed by the position manager, risk, journal, sessions and backtest fill lists."""
ORDER_EVENTS: Final = "events.order.**"
"""Every order event (the journal, the node's strategy routing, the sessions' displays)."""
ORDER_EVENTS_ONE: Final = "events.order.*"
"""Every order event, one segment deep (the flatten enforcer's verification)."""

# --- position events (published by the position manager) -----------------------------------------------------

POSITION_OPENED: Final = "events.position.opened"
"""``PositionOpened``: an account-wide net position went from flat to open."""
POSITION_CHANGED: Final = "events.position.changed"
"""``PositionChanged``: an open net position changed size or average price."""
POSITION_CLOSED: Final = "events.position.closed"
"""``PositionClosed``: a net position went flat (carries realized PnL)."""
POSITION_EVENTS: Final = "events.position.**"
"""Every account-wide position event (the journal, the sessions' displays)."""

STRATEGY_POSITION_PREFIX: Final = "events.strategy.position"
"""Prefix of the per-strategy position topics; see :func:`strategy_position`."""


def strategy_position(cause: str) -> str:
    """A strategy's position change for one cause (``PositionCause.value``, e.g. ``own_fill``):
    ``events.strategy.position.own_fill``. Payload ``StrategyPositionChange``; published by the position manager,
    routed by the node to the strategy's ``on_position_changed``."""
    return f"{STRATEGY_POSITION_PREFIX}.{cause}"


# --- strategy life cycle (published by the desk, propdesk.node.desk) -----------------------------------------

STRATEGY_STATE: Final = "events.strategy.state"
"""``StrategyStateChanged``: a strategy was started, paused or stopped from the desk."""
STRATEGY_PARAMS: Final = "events.strategy.params"
"""``StrategyParamsChanged``: a strategy's parameters changed to a new version from the desk."""


# --- broker connection (published by the node from its broker) -----------------------------------------------

BROKER_CONNECTED: Final = "events.broker.connected"
"""``BrokerConnected``: the broker's session is up (risk reconciles, sessions display it)."""
BROKER_DISCONNECTED: Final = "events.broker.disconnected"
"""``BrokerDisconnected``: the broker's session dropped."""
BROKER_PREFIX: Final = "events.broker"
"""Prefix of the broker's other events; see :func:`broker_event`."""


def broker_event(name: str) -> str:
    """Any other broker event, by its class name: ``events.broker.AccountUpdate``. Published by the node."""
    return f"{BROKER_PREFIX}.{name}"


# --- risk events (payload the named ``propdesk.risk.events`` class) -------------------------------------------

RISK_EVENT: Final = "events.risk.event"
"""``RiskEvent``, the base class's topic."""
RISK_RULE_BREACHED: Final = "events.risk.rule_breached"
"""``RuleBreached``: a rule's limit was crossed (published by the account guard)."""
RISK_RULE_WARNED: Final = "events.risk.rule_warned"
"""``RuleWarned``: a rule's warning threshold was crossed (the account guard)."""
RISK_TRADING_STATE_CHANGED: Final = "events.risk.trading_state_changed"
"""``TradingStateChanged``: the account's trading state (active, reduce-only, locked out...) changed (the guard)."""
RISK_ACCOUNT_FLATTENED: Final = "events.risk.account_flattened"
"""``AccountFlattened``: the flatten enforcer closed every position and order of the account."""
RISK_POSITION_CLOSED: Final = "events.risk.position_closed"
"""``PositionClosedByRisk``: the flatten enforcer closed one position (per-contract rules)."""
RISK_FLATTEN_RETRY: Final = "events.risk.flatten_retry"
"""``FlattenRetry``: a flatten attempt left something open and is retried (the flatten enforcer)."""
RISK_LOCKOUT_SET: Final = "events.risk.lockout_set"
"""``LockoutSet``: a lockout started (the account guard)."""
RISK_LOCKOUT_EXPIRED: Final = "events.risk.lockout_expired"
"""``LockoutExpired``: a lockout ended (the account guard)."""
RISK_DECISION_LOGGED: Final = "events.risk.decision_logged"
"""``DecisionLogged``: a pre-trade gate decision was audited (risk audit)."""
RISK_RECONCILED: Final = "events.risk.reconciled"
"""``Reconciled``: the account state was reconciled with the broker on connect (risk reconcile)."""
RISK_PREFIX: Final = "events.risk"
"""Prefix of every risk event's topic."""
RISK_EVENTS: Final = "events.risk.**"
"""Every risk event (the journal, the risk daemon's log)."""

# --- session calendar events (published by the risk calendar's timers) ----------------------------------------

SESSION_ROLLED: Final = "events.session.rolled"
"""``SessionRolled``: the CME trading date rolled (daily loss resets; the guard, account state and journal)."""
SESSION_FLAT_TIME: Final = "events.session.flat_time"
"""``FlatTimeReached``: the firm's flat time for some products (R11)."""
SESSION_ENTRY_CUTOFF: Final = "events.session.entry_cutoff"
"""``EntryCutoffReached``: no new opening orders for some products until the next open (R11)."""

# --- account and errors -----------------------------------------------------------------------------------------

ACCOUNT_EVENTS: Final = "events.account.**"
"""Every account record the journal numbers (the event stream's account topics below)."""
ACCOUNT_SEEN: Final = "events.account.seen"
"""The journal's first sighting of an account (stream payload: the ``accounts`` row)."""
ACCOUNT_REPORT: Final = "events.account.report"
"""A broker's account report as journaled (stream payload: the ``accounts`` row)."""
ACCOUNT_SNAPSHOT: Final = "events.account.snapshot"
"""The risk engine's account snapshot as journaled (stream payload: the ``account_snapshots`` row and its EOD rows)."""
ACCOUNT_EOD: Final = "events.account.eod"
"""An end-of-day balance as journaled (stream payload: the ``eod_balances`` row)."""
STRATEGY_ROWS: Final = "events.strategy.rows"
"""Strategy runs and backtest results as journaled (stream payload: the rows)."""
COMMAND_RESULTS: Final = "events.desk.command_result"
"""The desk's first result of a command key as journaled (stream payload: the ``command_results`` row; not among the
stream's default topics)."""
STRATEGY_EVENTS: Final = "events.strategy.**"
"""Every strategy event: attributed position changes, life cycle, parameters, journaled rows."""
DESK_EVENTS: Final = "events.desk.**"
"""Every desk record on the stream (command results)."""


def order_event(kind: str) -> str:
    """``events.order.<kind>`` (``filled``, ``canceled``, ...: an order event's topic)."""
    return f"events.order.{kind}"


def position_event(kind: str) -> str:
    """``events.position.<kind>`` (``opened``, ``changed``, ``closed``)."""
    return f"events.position.{kind}"


def risk_event(kind: str) -> str:
    """``events.risk.<kind>`` (a risk event's topic by its kind)."""
    return f"{RISK_PREFIX}.{kind}"


"""Account records; no publisher today. The journal records whatever is published here."""
HANDLER_ERROR: Final = "events.error.handler"
"""``HandlerFailed``: a bus handler raised (published by the bus)."""
ORDER_ERROR: Final = "events.error.order"
"""``OrderEventError``: the order state machine refused an event (published by the order manager)."""


class Priority(IntEnum):
    """Bus priorities, highest first: the bus calls a topic's handlers in order of decreasing priority, then of
    subscription. Each value's reason is the handler it must run before or after.
    """

    JOURNAL = 1000
    """The journal captures every record before anyone reacts to it."""
    SESSION_EVENTS = 200
    """A session's display of order and position events: an order event is shown before the position manager (100)
    publishes the position events the fill causes."""
    DAEMON_RECORD = 150
    """The risk daemon's fill record: before the position manager applies the fill."""
    POSITIONS = 100
    """The position manager's fills and marks: risk and strategies (at or below 0) see positions already updated."""
    RISK_VIEW = 50
    """The account state's handlers (fills, marks, session roll): after positions, before the guard (0)."""
    DEFAULT = 0
    """The account guard and the strategies (the bus's default)."""
    AGGREGATOR = -10
    """Bar aggregators on their source topic: after the default subscribers of the finer bar."""
    DISPLAY_TRADES = -50
    """A live session's trade-print display: after strategies and risk."""
    LATE = -100
    """After everyone else on a topic: the flatten enforcer's verification, the sessions' and backtest's fill lists."""
    RISK_TALLY = -200
    """The risk engine's own tallies of risk events."""
    RISK_OUTCOMES = -210
    """The risk outcome recorder: after the tallies."""
    SESSION_STATE = -300
    """A session's reaction to connection, trading-state and risk events: after risk has handled them."""
    DAEMON_RECONCILE = -400
    """The risk daemon's reconcile-on-connect and fill watcher: after the session's own handlers (-300)."""
    SNAPSHOT = -1000
    """The journal's account snapshots after fills and session rolls: after the account state has updated."""
