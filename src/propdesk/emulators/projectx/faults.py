"""Runtime fault injection for tests, and replay control, through a small admin REST API (loopback only).

Every switch takes effect at once and stays until cleared (or its count runs out):

==============================================  ==================================================================
``GET  /_propdesk/faults``                      the current switches
``POST /_propdesk/faults/clear``                clear every switch
``POST /_propdesk/faults/endpoint``             ``{"path": "Order/place", "mode": "error"|"timeout", "status": 500,
                                                "delay_s": 30, "count": null}``: answer HTTP ``status`` (5xx), or
                                                hang ``delay_s`` then answer 504, for the next ``count`` calls
                                                (``null`` = until cleared)
``POST /_propdesk/faults/hub/drop``             ``{"hub": "user"|"market"|"all", "graceful": false}``: drop every
                                                connection (abruptly, or with a Close message)
``POST /_propdesk/faults/hub/messages``         ``{"hub", "delay_s": 0, "drop_next": 0, "drop_all": false,
                                                "targets": null}``: delay every outgoing hub message, drop the next
                                                N (or all) invocations, optionally only of the given targets
``POST /_propdesk/faults/hub/restart``          ``{"hub", "down_s": 2}``: Close every connection and refuse new ones
                                                (negotiate and WebSocket: 503) for ``down_s`` seconds
``POST /_propdesk/faults/tokens/expire``        ``{"close_hubs": false}``: every token issued so far is expired
                                                (REST 401, ``validate`` errorCode 3, hubs refuse reconnects)
``POST /_propdesk/replay/step``                 ``{"events": 1}``: pause the clock and stream the next N events
``POST /_propdesk/replay/pause`` / ``resume``   freeze / run the presented clock (``resume`` takes ``speed``)
``GET  /_propdesk/replay``                      presented time, speed, paused, events streamed
==============================================  ==================================================================

Every request needs ``Authorization: Bearer <admin token>`` (``GatewayConfig.admin_token``, printed by ``propdesk
gateway`` at start; 401 without it); a body must be ``application/json`` (415 otherwise: a browser's cross-site
"simple" POST is ``text/plain``) within the gateway's JSON limits, and every number within its range (400:
``events`` 1..2,000, ``delay_s``/``down_s`` 0..3,600 s, ``speed`` up to 10**6, ``count`` 1..10**9). Requests from a
non-loopback client get 403 (the server binds 127.0.0.1 anyway; this is a second fence). The Host and Origin checks
of :mod:`propdesk.emulators.projectx.guard` apply here as everywhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from propdesk.emulators.projectx.auth import TokenService
from propdesk.emulators.projectx.guard import admin_refusal
from propdesk.emulators.projectx.limits import JsonLimits, loads
from propdesk.emulators.projectx.market import MarketReplay
from propdesk.emulators.projectx.signalr import HubServer

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


@dataclass
class EndpointFault:
    """An injected REST failure: ``error`` answers ``status`` at once; ``timeout`` hangs ``delay_s`` then 504."""

    mode: Literal["error", "timeout"] = "error"
    status: int = 500
    delay_s: float = 30.0
    remaining: int | None = None


@dataclass
class MessageFault:
    """Outgoing hub-message faults of one hub."""

    delay_s: float = 0.0
    drop_next: int = 0
    drop_all: bool = False
    targets: list[str] | None = None


@dataclass
class Faults:
    """The switches (module docstring); implements :class:`propdesk.emulators.projectx.signalr.OutgoingPolicy`."""

    endpoints: dict[str, EndpointFault] = field(default_factory=dict)
    messages: dict[str, MessageFault] = field(default_factory=dict)
    refuse_until: dict[str, float] = field(default_factory=dict)

    def endpoint_fault(self, path: str) -> EndpointFault | None:
        """The fault for ``path`` (``Order/place``, case-insensitive), counting one use."""
        f = self.endpoints.get(path.strip("/").lower())
        if f is None:
            return None
        if f.remaining is not None:
            f.remaining -= 1
            if f.remaining <= 0:
                del self.endpoints[path.strip("/").lower()]
        return f

    def should_drop(self, hub: str, target: str | None) -> bool:
        """True when the next outgoing invocation of ``target`` on ``hub`` must be dropped (counts it)."""
        m = self.messages.get(hub)
        if m is None or target is None or (m.targets is not None and target not in m.targets):
            return False
        if m.drop_all:
            return True
        if m.drop_next > 0:
            m.drop_next -= 1
            return True
        return False

    def delay_s(self, hub: str) -> float:
        """Delay of each outgoing message on ``hub`` (s)."""
        m = self.messages.get(hub)
        return 0.0 if m is None else m.delay_s

    def refusing(self, hub: str) -> bool:
        """True while ``hub`` is "restarting"."""
        return time.monotonic() < self.refuse_until.get(hub, 0.0)

    def clear(self) -> None:
        """Clear every switch."""
        self.endpoints.clear()
        self.messages.clear()
        self.refuse_until.clear()

    def snapshot(self) -> dict[str, Any]:
        """The switches as JSON."""
        now = time.monotonic()
        return {
            "endpoints": {k: asdict(v) for k, v in self.endpoints.items()},
            "messages": {k: asdict(v) for k, v in self.messages.items()},
            "refusing": {k: round(v - now, 3) for k, v in self.refuse_until.items() if v > now},
        }


def _hubs_of(hubs: dict[str, HubServer], name: object) -> list[HubServer]:
    if name in (None, "all"):
        return list(hubs.values())
    if name not in hubs:
        raise ValueError(f"hub must be one of {sorted(hubs)} or 'all', not {name!r}")
    return [hubs[str(name)]]


MAX_STEP_EVENTS: Final[int] = 2_000
"""Most events one ``replay/step`` streams (the loop is busy meanwhile: about 0.1 ms per event)."""
MAX_SPEED: Final[float] = 1e6
"""Fastest replay speed ``replay/resume`` accepts."""
MAX_SECONDS: Final[float] = 3600.0
"""Longest delay or downtime a fault switch accepts."""


def _number(b: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    """``b[key]`` (or ``default``) as a finite float within ``[lo, hi]``; ValueError naming the key otherwise."""
    v = b.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{key} must be a number within {lo:g}..{hi:g}, not {str(v)[:40]}")
    return float(v)


def _seconds(b: dict[str, Any], key: str, default: float) -> float:
    return _number(b, key, default, 0.0, MAX_SECONDS)


def _int(b: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    """``b[key]`` (or ``default``) as an int within ``[lo, hi]``; ValueError naming the key otherwise."""
    v = b.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{key} must be an integer within {lo}..{hi}, not {str(v)[:40]}")
    return v


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def admin_routes(
    faults: Faults,
    hubs: dict[str, HubServer],
    tokens: TokenService,
    market: MarketReplay,
    *,
    admin_token: str,
    limits: JsonLimits,
) -> list[BaseRoute]:
    """The admin API routes (module docstring); every request needs ``Authorization: Bearer <admin_token>``."""

    def endpoint(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            host = request.client.host if request.client is not None else ""
            if host not in LOOPBACK_HOSTS:
                return JSONResponse({"error": "admin API is loopback only"}, status_code=403)
            refused = admin_refusal(request, admin_token)
            if refused is not None:
                return refused
            raw = await request.body()
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if raw.strip() and kind != "application/json":
                return JSONResponse({"error": "the body must be application/json"}, status_code=415)
            try:
                body = loads(raw, limits, exact=False) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                return JSONResponse(await fn(body))
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return route

    async def get_faults(_: dict[str, Any]) -> dict[str, Any]:
        return faults.snapshot()

    async def clear(_: dict[str, Any]) -> dict[str, Any]:
        faults.clear()
        return faults.snapshot()

    async def set_endpoint(b: dict[str, Any]) -> dict[str, Any]:
        path = str(b["path"]).strip("/").lower()
        path = path.removeprefix("api/")
        mode = b.get("mode", "error")
        if mode not in ("error", "timeout"):
            raise ValueError("mode must be 'error' or 'timeout'")
        status = _int(b, "status", 500 if mode == "error" else 504, 500, 599)
        count = None if b.get("count") is None else _int(b, "count", 1, 1, 10**9)
        faults.endpoints[path] = EndpointFault(
            mode=mode, status=status, delay_s=_seconds(b, "delay_s", 30.0), remaining=count
        )
        return faults.snapshot()

    async def drop(b: dict[str, Any]) -> dict[str, Any]:
        n = 0
        for h in _hubs_of(hubs, b.get("hub", "all")):
            n += await h.drop_all(
                graceful=bool(b.get("graceful", False)), error="Connection dropped by fault injection"
            )
        return {"dropped": n}

    async def messages(b: dict[str, Any]) -> dict[str, Any]:
        targets = b.get("targets")
        for h in _hubs_of(hubs, b.get("hub", "all")):
            faults.messages[h.name] = MessageFault(
                delay_s=_seconds(b, "delay_s", 0.0),
                drop_next=_int(b, "drop_next", 0, 0, 10**9),
                drop_all=bool(b.get("drop_all", False)),
                targets=None if not isinstance(targets, list) else [str(t) for t in targets],
            )
        return faults.snapshot()

    async def restart(b: dict[str, Any]) -> dict[str, Any]:
        down = _seconds(b, "down_s", 2.0)
        n = 0
        for h in _hubs_of(hubs, b.get("hub", "all")):
            faults.refuse_until[h.name] = time.monotonic() + down
            n += await h.drop_all(graceful=True, error="Server is restarting")
        return {"closed": n, "down_s": down}

    async def expire(b: dict[str, Any]) -> dict[str, Any]:
        tokens.expire_all()
        n = 0
        if b.get("close_hubs", False):
            for h in hubs.values():
                n += await h.drop_all(graceful=True, error="Token expired")
        return {"expired": True, "closed": n}

    async def step(b: dict[str, Any]) -> dict[str, Any]:
        n = market.step(_int(b, "events", 1, 1, MAX_STEP_EVENTS))
        return {"events": n, **replay_state()}

    async def pause(_: dict[str, Any]) -> dict[str, Any]:
        market.catch_up()
        market.clock.pause()
        return replay_state()

    async def resume(b: dict[str, Any]) -> dict[str, Any]:
        if "speed" in b:
            speed = _number(b, "speed", 1.0, 1e-6, MAX_SPEED)
            market.clock.set_speed(speed)
        market.clock.resume()
        market.start()
        return replay_state()

    async def get_replay(_: dict[str, Any]) -> dict[str, Any]:
        return replay_state()

    def replay_state() -> dict[str, Any]:
        return {
            "now_ns": market.now_ns(),
            "paused": market.clock.paused,
            "speed": market.clock.speed,
            "events_processed": market.events_processed,
        }

    return [
        Route("/_propdesk/faults", endpoint(get_faults), methods=["GET"]),
        Route("/_propdesk/faults/clear", endpoint(clear), methods=["POST"]),
        Route("/_propdesk/faults/endpoint", endpoint(set_endpoint), methods=["POST"]),
        Route("/_propdesk/faults/hub/drop", endpoint(drop), methods=["POST"]),
        Route("/_propdesk/faults/hub/messages", endpoint(messages), methods=["POST"]),
        Route("/_propdesk/faults/hub/restart", endpoint(restart), methods=["POST"]),
        Route("/_propdesk/faults/tokens/expire", endpoint(expire), methods=["POST"]),
        Route("/_propdesk/replay/step", endpoint(step), methods=["POST"]),
        Route("/_propdesk/replay/pause", endpoint(pause), methods=["POST"]),
        Route("/_propdesk/replay/resume", endpoint(resume), methods=["POST"]),
        Route("/_propdesk/replay", endpoint(get_replay), methods=["GET"]),
    ]
