"""The ProjectX (TopstepX) broker adapter: REST client, realtime hubs, mapping, and :class:`ProjectXBroker`.

Spec: ``../shared/specs/projectx-gateway-api.md``. Build a broker with
``ProjectXBroker(ProjectXSettings(...).with_env_credentials(), account_id=...)``.
"""

from propdesk.brokers.projectx.broker import BrokerCommandFailed, ProjectXBroker, discover_accounts
from propdesk.brokers.projectx.config import ProjectXSettings
from propdesk.brokers.projectx.errors import ApiError, ProjectXError, UncertainOutcomeError
from propdesk.brokers.projectx.history import BarSource, ProjectXBarSource
from propdesk.brokers.projectx.realtime import FeedResumed, FeedStale
from propdesk.brokers.projectx.rest import ProjectXRest

__all__ = [
    "ApiError",
    "BarSource",
    "BrokerCommandFailed",
    "FeedResumed",
    "FeedStale",
    "ProjectXBarSource",
    "ProjectXBroker",
    "ProjectXError",
    "ProjectXRest",
    "ProjectXSettings",
    "UncertainOutcomeError",
    "discover_accounts",
]
