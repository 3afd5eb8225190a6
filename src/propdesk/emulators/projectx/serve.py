"""What ``propdesk gateway`` prints and logs: the start banner, and uvicorn's logging with hub tokens redacted.

The banner gives everything a client needs and nothing else: the base URL exactly as ``propdesk run --broker projectx
--api-base`` takes it (the host and port; the client appends ``/api/...``), the two hub URLs, the OpenAPI document,
the login credentials the gateway accepts (its own local test credentials, ``GatewayConfig.user_name``/``api_key``,
not a real ProjectX key), the admin API token, and a ready command line. The JWT signing key is never printed.

SignalR clients put their token in the query string (``/hubs/user?access_token=<jwt>``, spec section 5.1), which
uvicorn's access and WebSocket log lines would print; :func:`log_config` is uvicorn's default logging with
:class:`RedactTokens` on every handler.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any, Final

from uvicorn.config import LOGGING_CONFIG

from propdesk.brokers.projectx.config import ENV_API_KEY, ENV_USERNAME
from propdesk.emulators.projectx.app import OPENAPI_PATH
from propdesk.emulators.projectx.config import GatewayConfig

_TOKEN_IN_QUERY: Final = re.compile(r"((?:access_token|id_token|token)=)[^&\s\"']+", re.IGNORECASE)


def base_url(config: GatewayConfig) -> str:
    """``http://<host>:<port>`` of the bound address (an IPv6 host in brackets): the ``--api-base`` value."""
    host = config.host
    return f"http://[{host}]:{config.port}" if ":" in host else f"http://{host}:{config.port}"


def start_banner(config: GatewayConfig) -> str:
    """The lines ``propdesk gateway`` prints at start (module docstring)."""
    base = base_url(config)
    hub_user, hub_market = f"{base}/hubs/user", f"{base}/hubs/market"
    return "\n".join(
        [
            f"ProjectX gateway (propdesk emulator, simulated accounts) on {base}",
            f"  REST        {base}/api/...   OpenAPI {base}{OPENAPI_PATH}",
            f"  hubs        {hub_user}  {hub_market}",
            f"  login       userName {config.user_name!r}  apiKey {config.api_key!r}  (this gateway's own test "
            "credentials, not a ProjectX key)",
            f"  admin API   {base}/_propdesk/...  Authorization: Bearer {config.admin_token}",
            f"  connect     {ENV_USERNAME}={config.user_name} {ENV_API_KEY}={config.api_key} propdesk run --broker "
            f"projectx --api-base {base} --user-hub {hub_user} --market-hub {hub_market}",
        ]
    )


class RedactTokens(logging.Filter):
    """Replaces the value of ``access_token=`` (and ``token=``) query parameters in a log record with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record``'s message and string arguments in place; always keep the record."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact(text: str) -> str:
    """``text`` with token query parameters' values replaced by ``***``."""
    return _TOKEN_IN_QUERY.sub(r"\1***", text)


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`RedactTokens` on its handlers (pass as ``log_config``)."""
    cfg: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    cfg.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    for handler in cfg["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact_tokens"]
    return cfg
