"""The Host and Origin checks on every request of propdesk's API (plain HTTP and WebSocket upgrades).

* **Host**: the ``Host`` header's name (port ignored) must be a loopback name (``127.0.0.1``, ``localhost``,
  ``[::1]``) or one of the configured names (the bind host, a LAN name the trader chose); anything else gets
  ``HOST_NOT_ALLOWED`` (HTTP 400). A web page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) sends its
  own name as ``Host``.
* **Origin**: a request carrying an ``Origin`` that is not this server's own (``scheme://`` + ``Host``), or
  ``Sec-Fetch-Site: cross-site``/``same-site``, gets ``CROSS_ORIGIN`` (HTTP 403): browsers set these on every
  cross-origin request, including the "simple" ``text/plain`` POST that skips the CORS preflight and WebSocket
  upgrades, which CORS does not cover. Programs (httpx, curl, TradingView's webhook sender) send neither.

The decisions are those of the ProjectX emulator's guard (:mod:`propdesk.emulators.projectx.guard`, whose
:func:`~propdesk.emulators.projectx.guard.cross_origin_reason` and loopback names this module reuses); the answers
here are problem documents (:mod:`propdesk.api.problems`).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from propdesk.api.problems import Problem, ProblemCode, problem_response
from propdesk.emulators.projectx.guard import LOOPBACK_NAMES, cross_origin_reason

__all__ = ["HostOriginGuard", "allowed_host_names", "host_name"]


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header, lower case, port removed (``[::1]:8000`` -> ``[::1]``)."""
    h = host_header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[: end + 1] if end > 0 else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def allowed_host_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names plus ``extra`` (an IPv6 literal gets its brackets, as in a ``Host`` header)."""
    names = {n.lower() for n in LOOPBACK_NAMES}
    for name in extra:
        n = name.strip().lower()
        if n:
            names.add(f"[{n}]" if ":" in n and not n.startswith("[") else n)
    return frozenset(names)


class HostOriginGuard:
    """ASGI middleware refusing a foreign ``Host`` (400) and a browser's cross-origin request (403) with problem
    documents (module docstring).

    Args:
        app: the wrapped ASGI app. allowed_hosts: the names accepted besides the loopback ones.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = allowed_host_names(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = Headers(scope=scope)
            problem = self.refusal(headers)
            if problem is not None:
                await problem_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, headers: Headers) -> Problem | None:
        """The problem of a request with these headers, or ``None`` when it passes."""
        name = host_name(headers.get("host", ""))
        if name not in self.allowed:
            return Problem.of(ProblemCode.HOST_NOT_ALLOWED, "the Host header names a host this server does not serve")
        reason = cross_origin_reason(headers)
        if reason is not None:
            return Problem.of(ProblemCode.CROSS_ORIGIN, f"cross-origin request refused: {reason}")
        return None
