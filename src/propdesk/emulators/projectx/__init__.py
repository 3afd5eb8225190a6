"""A local server speaking the ProjectX Gateway API (REST + SignalR user and market hubs) over ``brokers/sim``.

Contract: ``../shared/specs/projectx-gateway-api.md``. Real clients (project-x-py, propdesk's own ProjectX broker)
connect to ``http://127.0.0.1:<port>/api``, ``/hubs/user`` and ``/hubs/market`` unchanged except for the URLs. It
binds loopback only, answers loopback Host headers only and never forwards anything to a real gateway. Start it with
``propdesk gateway`` (its banner gives the ``--api-base`` URL, the login and the admin API token) or
``create_app(GatewayConfig(...))``; the OpenAPI document is at ``/openapi.json``.
"""

from propdesk.emulators.projectx.app import Gateway, create_app
from propdesk.emulators.projectx.config import AccountConfig, FeedConfig, GatewayConfig, PastTrade, load_gateway_config

__all__ = ["AccountConfig", "FeedConfig", "Gateway", "GatewayConfig", "PastTrade", "create_app", "load_gateway_config"]
