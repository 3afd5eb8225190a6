"""The gateway's fences around every request: Host header, cross-origin browser requests, body size, admin token.

:func:`install_guards` adds, outermost first (the body size limit is FastAPI's own ``max_body_size``, set by
:func:`~propdesk.emulators.projectx.app.create_app`):

1. **Host** (Starlette's ``TrustedHostMiddleware``): the ``Host`` header must name a loopback host (``127.0.0.1``,
   ``localhost``, ``[::1]``) or the configured bind host, any port; anything else gets HTTP 400. A web page on
   ``evil.example`` whose name an attacker re-points at 127.0.0.1 (DNS rebinding) sends ``Host: evil.example``.
2. **Origin** (:class:`CrossOriginGuard`): a request carrying an ``Origin`` that is not the gateway's own
   (``scheme://`` + the ``Host`` header), or ``Sec-Fetch-Site: cross-site``/``same-site``, gets HTTP 403. Browsers
   set both on cross-origin requests, including the "simple" ``text/plain`` POST that skips the CORS preflight and
   WebSocket upgrades (which CORS does not cover); programs (httpx, pysignalr, websockets) send neither.
3. **Body size** (FastAPI's ``max_body_size``, Starlette's ``RequestBodyLimitMiddleware``): a body over
   ``GatewayConfig.max_body_bytes`` gets HTTP 413 before it is read (by ``Content-Length``) or as soon as the
   streamed bytes exceed it.

Each applies to plain HTTP and to WebSocket upgrades (refused with an HTTP denial response). The admin API
(``/_propdesk/*``) also needs ``Authorization: Bearer <GatewayConfig.admin_token>`` (:func:`admin_refusal`).
"""

from __future__ import annotations

import hmac
from typing import Final
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from propdesk.emulators.projectx.config import GatewayConfig

LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")
"""Host header names of the loopback interface (an IPv6 literal keeps its brackets in a Host header)."""


def allowed_hosts(config: GatewayConfig) -> list[str]:
    """The Host header names the gateway answers: :data:`LOOPBACK_NAMES` and the configured bind host."""
    host = config.host.lower()
    own = f"[{host}]" if ":" in host else host
    return list(dict.fromkeys([*LOOPBACK_NAMES, own]))


class CrossOriginGuard:
    """ASGI middleware refusing browsers' cross-origin requests with 403 (module docstring, item 2).

    Args:
        app: the wrapped ASGI app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            reason = cross_origin_reason(Headers(scope=scope))
            if reason is not None:
                await PlainTextResponse(f"Cross-origin request refused: {reason}", status_code=403)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def cross_origin_reason(headers: Headers) -> str | None:
    """Why a request with these headers is cross-origin, or ``None`` when it is not (or comes from a program)."""
    site = headers.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site is {site}"
    origin = headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin.strip())
    host = headers.get("host", "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.netloc.lower() != host:
        return f"Origin {origin[:100]!r} is not this gateway's"
    return None


def admin_refusal(request: Request, token: str) -> Response | None:
    """``None`` when ``request`` carries ``Authorization: Bearer <token>`` (compared in constant time), else the
    HTTP 401 reply (with ``WWW-Authenticate``; the message never echoes what was sent)."""
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if given and hmac.compare_digest(given.encode(), token.encode()):
        return None
    return JSONResponse(
        {"error": "the admin API needs Authorization: Bearer <admin token> (printed by propdesk gateway at start)"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="propdesk-gateway-admin"'},
    )


def install_guards(app: FastAPI, config: GatewayConfig) -> None:
    """Add the Host and Origin middlewares of the module docstring to ``app`` (the Host check outermost)."""
    app.add_middleware(CrossOriginGuard)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(config), www_redirect=False)
