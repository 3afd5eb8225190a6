"""The simulated broker: per-contract matching engines, a paper account and the ``Broker`` protocol over them.

See :mod:`propdesk.brokers.sim.broker` (commands, brackets, OCO, account, reports), :mod:`propdesk.brokers.sim.matching`
(fill rules for bars, trades, quotes and L2 depth) and :mod:`propdesk.brokers.sim.config` (options and fees).
"""

from propdesk.brokers.sim.broker import BookLevels, SimAccount, SimBroker
from propdesk.brokers.sim.calendar_check import MarketHours
from propdesk.brokers.sim.config import SimConfig
from propdesk.brokers.sim.matching import MatchingEngine, WorkingOrder

__all__ = [
    "BookLevels",
    "MarketHours",
    "MatchingEngine",
    "SimAccount",
    "SimBroker",
    "SimConfig",
    "WorkingOrder",
]
