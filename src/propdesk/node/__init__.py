"""The trading node and its wiring: :class:`TradingNode` (clock, bus, broker, order and position managers,
portfolio, risk and strategies; :mod:`propdesk.node.trading_node`), the node's journal
(:mod:`propdesk.node.journaling`), its recovery and reconcile on start (:mod:`propdesk.node.recovery`), the
bootstrap of the risk state from a broker's trade history (:mod:`propdesk.node.bootstrap`) and the one builder that
wires a node for every session kind (:mod:`propdesk.node.builder`).

Imports ``core``, ``model``, ``data``, ``execution``, ``risk``, ``brokers``, ``strategies`` and ``storage``
(ARCHITECTURE.md); the sessions, consoles and the CLI build on it.
"""

from propdesk.node.trading_node import DEFAULT_TIMEFRAME, NodeConfig, NodeContext, TradingNode, bar_topic

__all__ = ["DEFAULT_TIMEFRAME", "NodeConfig", "NodeContext", "TradingNode", "bar_topic"]
