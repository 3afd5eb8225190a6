"""The gateway's FastAPI app: every REST endpoint of the ProjectX Gateway API, both hubs and the admin API.

``create_app(config)`` wires :class:`Gateway`: tokens (:mod:`~propdesk.emulators.projectx.auth`), rate limits
(:mod:`~propdesk.emulators.projectx.ratelimit`), the sim-backed state (:mod:`~propdesk.emulators.projectx.state`), the
market replay (:mod:`~propdesk.emulators.projectx.market`), the hubs (:mod:`~propdesk.emulators.projectx.hubs` over
:mod:`~propdesk.emulators.projectx.signalr`) and fault injection (:mod:`~propdesk.emulators.projectx.faults`).

REST rules (``../shared/specs/projectx-gateway-api.md`` sections 1.2, 2, 3): every endpoint is ``POST /api/<path>``
with a JSON body (paths are case-insensitive, as in ASP.NET), except ``GET /api/Status/ping`` (``"pong"``). Every reply
carries ``success``, ``errorCode``, ``errorMessage`` and its payload key (``null``/``[]`` on failure); business failures
are HTTP 200 with the endpoint's own error code (section 3.5). A missing, invalid, revoked or expired token is HTTP 401
(``Auth/validate`` answers an expired token with errorCode 3 instead); exceeding a rate limit is HTTP 429 with
``Retry-After``; an unknown path is 404; a body that is not a JSON object, a missing required field or a field of the
wrong type is 400 (RFC 7807 ProblemDetails, as ASP.NET model validation answers; the spec requires it for
``Auth/loginKey`` and ``Order/v2/query``). Unknown request fields are ignored. Required booleans (``live``,
``onlyActiveAccounts``, ``includePartialBar``) default to false when omitted, to tolerate clients that leave them out.
``Trade/search`` accepts a missing ``startTimestamp`` (from the account's creation). ``Order/searchOpen`` excludes
status 8 (Suspended bracket children); ``Order/v2/query`` finds them.

Hardening: bodies are parsed within :class:`~propdesk.emulators.projectx.limits.JsonLimits` (size, nesting, number
length and exponent; 400 ProblemDetails beyond), integer fields within their .NET type (``int`` = Int32, ids Int64)
and decimals within .NET ``decimal`` (400 beyond), so no request can stall the event loop or store a value a reply
cannot carry; Host, Origin and body size are checked for every request and the admin API needs its token
(:mod:`~propdesk.emulators.projectx.guard`). The OpenAPI document is served at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, Final

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from propdesk.emulators.projectx.auth import TokenService, TokenState
from propdesk.emulators.projectx.config import GatewayConfig
from propdesk.emulators.projectx.faults import Faults, admin_routes
from propdesk.emulators.projectx.guard import install_guards
from propdesk.emulators.projectx.history import BarRequestError, check_request, retrieve_bars
from propdesk.emulators.projectx.hubs import MarketHub, UserHub
from propdesk.emulators.projectx.limits import JsonLimitError, JsonLimits, loads
from propdesk.emulators.projectx.market import FeedData, MarketReplay
from propdesk.emulators.projectx.openapi import build_openapi
from propdesk.emulators.projectx.ratelimit import SlidingWindowLimiter
from propdesk.emulators.projectx.signalr import HubServer
from propdesk.emulators.projectx.state import (
    OPEN_SEARCH_STATUSES,
    GatewayState,
    PlaceRequest,
    PxOrder,
)
from propdesk.emulators.projectx.wire import parse_ts

JSON = dict[str, Any]
OPENAPI_PATH: Final = "/openapi.json"
"""Where the OpenAPI document is served (:mod:`propdesk.emulators.projectx.openapi`)."""
OPENAPI_TITLE: Final = "propdesk ProjectX gateway"
OPENAPI_VERSION: Final = "1"


class BadRequestError(Exception):
    """A request body the server refuses with HTTP 400 ProblemDetails (``field``: what was wrong)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def problem(errors: dict[str, list[str]]) -> Response:
    """An RFC 7807 ProblemDetails 400 reply in ASP.NET's validation shape."""
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": errors,
        "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
    }
    return Response(json.dumps(body), status_code=400, media_type="application/problem+json")


def ok(**payload: Any) -> JSON:
    """A success envelope with ``payload``."""
    return {"success": True, "errorCode": 0, "errorMessage": None, **payload}


def fail(code: int, message: str | None, **payload: Any) -> JSON:
    """A business-failure envelope (HTTP 200) with the payload keys empty."""
    return {"success": False, "errorCode": code, "errorMessage": message, **payload}


# --------------------------------------------------------------------------------------------------- body fields

_MISSING: Final = object()


def _get(b: JSON, key: str) -> Any:
    return b.get(key, _MISSING)


INT32: Final = (-(2**31), 2**31 - 1)
"""The range of the spec's ``int`` (.NET ``Int32``)."""
INT64: Final = (-(2**63), 2**63 - 1)
"""The range of the spec's ``int64`` (order and trade ids)."""
DECIMAL_MAX: Final = Decimal("79228162514264337593543950335")
"""The largest magnitude of the spec's ``dec`` (.NET ``decimal``)."""


def req_int(b: JSON, key: str, bounds: tuple[int, int] = INT32) -> int:
    """A required integer field (JSON number without fraction; booleans refused) within ``bounds`` (the spec's
    ``int`` by default, ``INT64`` for ids): ASP.NET model binding answers 400 to a number its type cannot hold."""
    v = _get(b, key)
    if v is _MISSING or v is None:
        raise BadRequestError(key, f"The {key} field is required.")
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)) or (isinstance(v, Decimal) and v != v.to_integral()):
        raise BadRequestError(key, f"The {key} field must be an integer.")
    lo, hi = bounds
    if not lo <= v <= hi:
        raise BadRequestError(key, f"The {key} field is out of range ({lo}..{hi}).")
    return int(v)


def opt_int(b: JSON, key: str, bounds: tuple[int, int] = INT32) -> int | None:
    """An optional integer field (see :func:`req_int`)."""
    return None if _get(b, key) in (_MISSING, None) else req_int(b, key, bounds)


def req_str(b: JSON, key: str) -> str:
    """A required string field."""
    v = _get(b, key)
    if v is _MISSING or v is None:
        raise BadRequestError(key, f"The {key} field is required.")
    if not isinstance(v, str):
        raise BadRequestError(key, f"The {key} field must be a string.")
    return v


def opt_str(b: JSON, key: str) -> str | None:
    """An optional string field."""
    return None if _get(b, key) in (_MISSING, None) else req_str(b, key)


def opt_bool(b: JSON, key: str) -> bool:
    """A boolean field, false when omitted."""
    v = _get(b, key)
    if v is _MISSING or v is None:
        return False
    if not isinstance(v, bool):
        raise BadRequestError(key, f"The {key} field must be a boolean.")
    return v


def opt_dec(b: JSON, key: str) -> Decimal | None:
    """An optional decimal field (exact: bodies are parsed with ``Decimal`` floats) within the range of .NET's
    ``decimal`` (``DECIMAL_MAX``); whether it suits the field (positive, on the tick) is the endpoint's business."""
    v = _get(b, key)
    if v is _MISSING or v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)) or not Decimal(v).is_finite():
        raise BadRequestError(key, f"The {key} field must be a number.")
    d = Decimal(v)
    if abs(d) > DECIMAL_MAX:
        raise BadRequestError(key, f"The {key} field is out of range.")
    return d


def req_ts(b: JSON, key: str) -> int:
    """A required ISO-8601 timestamp field, as UTC ns."""
    v = _get(b, key)
    if v is _MISSING or v is None:
        raise BadRequestError(key, f"The {key} field is required.")
    try:
        return parse_ts(v)
    except ValueError:
        raise BadRequestError(key, f"The {key} field is not a valid date-time.") from None


def opt_ts(b: JSON, key: str) -> int | None:
    """An optional timestamp field."""
    return None if _get(b, key) in (_MISSING, None) else req_ts(b, key)


# --------------------------------------------------------------------------------------------------- runtime


Endpoint = Callable[["Gateway", JSON, str | None], JSON | Response]


class Gateway:
    """Everything one running gateway holds (see the module docstring).

    Args:
        config: the configuration.
        feeds: pre-loaded feed data (tests); loaded from ``config.feeds`` when ``None``.
        now_ns: the wall-clock start (UTC ns; default now).
    """

    def __init__(
        self, config: GatewayConfig, *, feeds: list[FeedData] | None = None, now_ns: int | None = None
    ) -> None:
        self.config = config
        start = time.time_ns() if now_ns is None else now_ns
        self.tokens = TokenService(
            config.jwt_secret,
            ttl_s=config.token_ttl_s,
            grace_s=config.validate_grace_s,
            user_name=config.user_name,
            api_key=config.api_key,
        )
        self.general = SlidingWindowLimiter(config.rate_limit.general.count, config.rate_limit.general.window_s)
        self.history = SlidingWindowLimiter(config.rate_limit.history.count, config.rate_limit.history.window_s)
        self.faults = Faults()
        self.limits = JsonLimits(max_bytes=config.max_body_bytes)
        holder: list[GatewayState] = []

        class _Trading:
            def advance(self, ts_ns: int) -> None:
                holder[0].advance(ts_ns)

            def on_trade(self, tick: Any) -> None:
                holder[0].on_trade(tick)

            def on_quote(self, quote: Any) -> None:
                holder[0].on_quote(quote)

            def on_book(self, symbol: str, book: Any, ts_ns: int) -> None:
                holder[0].on_book(symbol, book, ts_ns)

        self.market = MarketReplay(config, now_ns=start, trading=_Trading(), feeds=feeds)
        self.catalog = self.market.catalog
        self.state = GatewayState(config, self.catalog, self.market.start_ns)
        holder.append(self.state)
        self.state.market = self.market
        for rt in self.market.feeds:  # the sim judges closed periods at the data's own time, not the presented one
            for info in rt.contracts:
                for acct in self.state.accounts.values():
                    acct.sim.set_calendar_offset(info.name, rt.offset_ns)
        self.user_hub = UserHub({a.id for a in config.accounts}, config.user_event_shape)
        self.market_hub = MarketHub(
            self.market,
            lambda cid: self.catalog.by_id(cid) is not None,
            partial_quotes=config.partial_quotes,
            keepalive_s=config.market_keepalive_s,
            max_frame_bytes=config.max_frame_bytes,
        )
        self.state.sink = self.user_hub
        self.market.sink = self.market_hub
        self.hubs = {
            "user": HubServer(
                "user",
                self.user_hub,
                self.tokens.is_valid,
                ping_interval_s=config.ping_interval_s,
                max_frame_bytes=config.max_frame_bytes,
                policy=self.faults,
                limits=self.limits,
            ),
            "market": HubServer(
                "market",
                self.market_hub,
                self.tokens.is_valid,
                ping_interval_s=config.ping_interval_s,
                max_frame_bytes=config.max_frame_bytes,
                policy=self.faults,
                limits=self.limits,
            ),
        }

    async def start(self) -> None:
        """Start the replay (when ``autostart``) and the market keepalive."""
        if self.config.autostart:
            self.market.start()
        self.market_hub.start()

    async def stop(self) -> None:
        """Stop the tasks and close every hub connection with a Close message."""
        await self.market.stop()
        await self.market_hub.stop()
        for h in self.hubs.values():
            await h.drop_all(graceful=True, error="Server shutting down")


# --------------------------------------------------------------------------------------------------- endpoints


def _login(gw: Gateway, b: JSON, _t: str | None) -> JSON | Response:
    errors = {k: [f"The {k} field is required."] for k in ("userName", "apiKey") if not isinstance(b.get(k), str)}
    if errors:
        return problem(errors)
    code, token = gw.tokens.login(b["userName"], b["apiKey"])
    if code:
        return fail(code, "Invalid credentials" if code == 3 else "User not found", token=None)
    return ok(token=token)


def _validate(gw: Gateway, _b: JSON, token: str | None) -> JSON | Response:
    if gw.tokens.check(token).state is TokenState.INVALID:
        return Response(status_code=401)
    code, new = gw.tokens.validate(token)
    if code:
        return fail(code, {1: "InvalidSession", 2: "SessionNotFound", 3: "ExpiredToken"}[code], newToken=None)
    return ok(newToken=new, token=new)


def _logout(gw: Gateway, _b: JSON, token: str | None) -> JSON:
    assert token is not None
    gw.tokens.revoke(token)
    for h in gw.hubs.values():
        h.close_token(token, "Logged out")
    return ok()


def _accounts(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    only_active = opt_bool(b, "onlyActiveAccounts")
    rows = [a.to_json() for a in gw.state.accounts.values() if a.cfg.active or not only_active]
    return ok(accounts=rows)


def _contract_search(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    text = req_str(b, "searchText")
    live = opt_bool(b, "live")
    if live and gw.config.live_contracts == "empty":
        return ok(contracts=[])
    return ok(contracts=[c.to_json(active=True) for c in gw.catalog.search(text)])


def _contract_by_id(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    cid = req_str(b, "contractId")
    c = gw.catalog.by_id(cid)
    shape = gw.config.contract_by_id_shape
    keys: JSON = {}
    if c is None:
        if shape in ("contract", "both"):
            keys["contract"] = None
        if shape in ("contracts", "both"):
            keys["contracts"] = []
        return fail(1, f"Contract {cid} not found", **keys)
    row = c.to_json(active=gw.catalog.is_active(c))
    if shape in ("contract", "both"):
        keys["contract"] = row
    if shape in ("contracts", "both"):
        keys["contracts"] = [row]
    return ok(**keys)


def _contract_available(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    live = opt_bool(b, "live")
    if live and gw.config.live_contracts == "empty":
        return ok(contracts=[])
    return ok(contracts=[c.to_json(active=True) for c in gw.catalog.active.values()])


def _bars(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    raw = _get(b, "contractId")
    cid = str(raw) if isinstance(raw, (int, Decimal)) and not isinstance(raw, bool) else req_str(b, "contractId")
    opt_bool(b, "live")
    start, end = req_ts(b, "startTime"), req_ts(b, "endTime")
    unit, unit_number, limit = (req_int(b, k) for k in ("unit", "unitNumber", "limit"))
    partial = opt_bool(b, "includePartialBar")
    c = gw.catalog.by_id(cid)
    if c is None:
        return fail(1, f"Contract {cid} not found", bars=[])
    try:
        u, n, lim = check_request(unit, unit_number, limit)
    except BarRequestError as exc:
        return fail(exc.code, str(exc), bars=[])
    gw.state.sync()
    hist = gw.market.history_of(c.id)
    if hist is None:
        return ok(bars=[])
    bars = retrieve_bars(
        hist,
        unit=u,
        unit_number=n,
        start_ns=start,
        end_ns=end,
        limit=lim,
        include_partial=partial,
        now_ns=gw.market.now_ns(),
        price=c.price,
    )
    return ok(bars=bars)


def _bracket(b: JSON, key: str) -> int | None:
    v = _get(b, key)
    if v is _MISSING or v is None:
        return None
    if not isinstance(v, dict):
        raise BadRequestError(key, f"The {key} field must be an object {{ticks, type}}.")
    return req_int(v, "ticks")


def _place(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    sl, tp = _bracket(b, "stopLossBracket"), _bracket(b, "takeProfitBracket")
    r = PlaceRequest(
        account_id=req_int(b, "accountId"),
        contract_id=req_str(b, "contractId"),
        type=req_int(b, "type"),
        side=req_int(b, "side"),
        size=req_int(b, "size"),
        limit_price=opt_dec(b, "limitPrice"),
        stop_price=opt_dec(b, "stopPrice"),
        trail_price=opt_dec(b, "trailPrice"),
        custom_tag=opt_str(b, "customTag"),
        linked_order_id=opt_int(b, "linkedOrderId", INT64),
        stop_loss_ticks=sl,
        take_profit_ticks=tp,
        has_bracket=sl is not None or tp is not None,
    )
    code, msg, oid = gw.state.place_order(r)
    if code:
        return fail(code, msg, orderId=oid)
    return ok(orderId=oid)


def _modify(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    code, msg, _ = gw.state.modify_order(
        req_int(b, "accountId"),
        req_int(b, "orderId", INT64),
        size=opt_int(b, "size"),
        limit_price=opt_dec(b, "limitPrice"),
        stop_price=opt_dec(b, "stopPrice"),
        trail_price=opt_dec(b, "trailPrice"),
    )
    return fail(code, msg) if code else ok()


def _cancel(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    code, msg, _ = gw.state.cancel_order(req_int(b, "accountId"), req_int(b, "orderId", INT64))
    return fail(code, msg) if code else ok()


def _orders_of(gw: Gateway, b: JSON) -> tuple[int, list[PxOrder] | None]:
    aid = req_int(b, "accountId")
    acct = gw.state.account(aid)
    gw.state.sync()
    return aid, None if acct is None else sorted(acct.orders.values(), key=lambda o: o.id)


def _order_search(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    start = req_ts(b, "startTimestamp")
    end = opt_ts(b, "endTimestamp")
    aid, orders = _orders_of(gw, b)
    if orders is None:
        return fail(1, f"Account {aid} not found", orders=[])
    rows = [o.to_json() for o in orders if o.created_ns >= start and (end is None or o.created_ns <= end)]
    return ok(orders=rows)


def _order_open(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    aid, orders = _orders_of(gw, b)
    if orders is None:
        return fail(1, f"Account {aid} not found", orders=[])
    return ok(orders=[o.to_json() for o in orders if o.status in OPEN_SEARCH_STATUSES])


def _order_by_id(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    oid = req_int(b, "orderId", INT64)
    aid, orders = _orders_of(gw, b)
    if orders is None:
        return fail(1, f"Account {aid} not found", order=None)
    hit = next((o for o in orders if o.id == oid), None)
    return ok(order=hit.to_json()) if hit is not None else fail(2, f"Order {oid} not found", order=None)


def _v2_query(gw: Gateway, b: JSON, _t: str | None) -> JSON | Response:
    errors: dict[str, list[str]] = {}
    f = b.get("filter")
    if not isinstance(f, dict):
        return problem({"filter": ["The filter field is required."]})

    def check(fn: Callable[[], Any], key: str) -> Any:
        try:
            return fn()
        except BadRequestError as exc:
            errors[key] = [exc.message]
            return None

    aid = check(lambda: req_int(f, "accountId"), "filter.accountId")
    statuses = f.get("statuses")
    if statuses is not None and (
        not isinstance(statuses, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 8 for s in statuses)
    ):
        errors["filter.statuses"] = ["statuses must be a list of OrderStatus values 0..8."]
    contract = check(lambda: opt_str(f, "contractId"), "filter.contractId")
    after = check(lambda: opt_ts(f, "createdAfter"), "filter.createdAfter")
    before = check(lambda: opt_ts(f, "createdBefore"), "filter.createdBefore")
    size = check(lambda: opt_int(b, "pageSize"), "pageSize")
    offset = check(lambda: opt_int(b, "pageOffset"), "pageOffset")
    sort_by = check(lambda: opt_int(b, "sortBy"), "sortBy")
    direction = check(lambda: opt_int(b, "sortDirection"), "sortDirection")
    total = check(lambda: opt_bool(b, "includeTotalCount"), "includeTotalCount")
    if size is not None and not 1 <= size <= 1000:
        errors["pageSize"] = ["pageSize must be 1..1000."]
    if offset is not None and offset < 0:
        errors["pageOffset"] = ["pageOffset must be >= 0."]
    if sort_by not in (None, 0, 1):
        errors["sortBy"] = ["sortBy must be 0 (CreatedAt) or 1 (Id)."]
    if direction not in (None, 0, 1):
        errors["sortDirection"] = ["sortDirection must be 0 (Asc) or 1 (Desc)."]
    if errors:
        return problem(errors)
    acct = gw.state.account(aid)
    if acct is None:
        return fail(1, f"Account {aid} not found", orders=[], totalCount=0)
    gw.state.sync()
    rows = [
        o
        for o in acct.orders.values()
        if (statuses is None or o.status in statuses)
        and (contract is None or o.contract.id == contract)
        and (after is None or o.created_ns >= after)
        and (before is None or o.created_ns <= before)
    ]
    rows.sort(key=(lambda o: o.id) if sort_by == 1 else (lambda o: (o.created_ns, o.id)), reverse=direction == 1)
    start = offset or 0
    page = rows[start : start + (size or 100)]
    _ = total
    return ok(orders=[o.to_json() for o in page], totalCount=len(rows))


def _positions(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    aid = req_int(b, "accountId")
    acct = gw.state.account(aid)
    if acct is None:
        return fail(1, f"Account {aid} not found", positions=[])
    gw.state.sync()
    return ok(positions=[p.to_json() for p in acct.positions.values() if p.size > 0])


def _close(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    code, msg, oid = gw.state.close_position(req_int(b, "accountId"), req_str(b, "contractId"), None)
    return fail(code, msg, orderId=None) if code else ok(orderId=oid)


def _partial_close(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    aid, cid, size = req_int(b, "accountId"), req_str(b, "contractId"), req_int(b, "size")
    code, msg, oid = gw.state.close_position(aid, cid, size)
    if code:
        return fail(5 if code == -5 else code, msg, orderId=None)
    return ok(orderId=oid)


def _trades(gw: Gateway, b: JSON, _t: str | None) -> JSON:
    aid = req_int(b, "accountId")
    start = opt_ts(b, "startTimestamp")
    end = opt_ts(b, "endTimestamp")
    contract = opt_str(b, "contractId")
    acct = gw.state.account(aid)
    if acct is None:
        return fail(1, f"Account {aid} not found", trades=[])
    gw.state.sync()
    lo = acct.created_ns if start is None else start
    rows = [
        t.to_json()
        for t in acct.trades
        if t.ts_ns >= lo and (end is None or t.ts_ns <= end) and (contract is None or t.contract.id == contract)
    ]
    return ok(trades=rows)


ENDPOINTS: Final[dict[str, tuple[Endpoint, bool]]] = {
    "auth/loginkey": (_login, False),
    "auth/validate": (_validate, False),
    "auth/logout": (_logout, True),
    "account/search": (_accounts, True),
    "contract/search": (_contract_search, True),
    "contract/searchbyid": (_contract_by_id, True),
    "contract/available": (_contract_available, True),
    "history/retrievebars": (_bars, True),
    "order/place": (_place, True),
    "order/modify": (_modify, True),
    "order/cancel": (_cancel, True),
    "order/search": (_order_search, True),
    "order/searchopen": (_order_open, True),
    "order/searchbyid": (_order_by_id, True),
    "order/v2/query": (_v2_query, True),
    "position/searchopen": (_positions, True),
    "position/closecontract": (_close, True),
    "position/partialclosecontract": (_partial_close, True),
    "trade/search": (_trades, True),
}
"""Lower-case path under ``/api`` -> (handler, requires a valid token)."""


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


async def _handle(gw: Gateway, request: Request, path: str) -> Response:
    key = path.strip("/").lower()
    if key == "status/ping":
        if request.method != "GET":
            return Response(status_code=405)
        return JSONResponse("pong")
    entry = ENDPOINTS.get(key)
    if entry is None:
        return Response(status_code=404)
    if request.method != "POST":
        return Response(status_code=405)
    fault = gw.faults.endpoint_fault(key)
    if fault is not None:
        if fault.mode == "timeout":
            await asyncio.sleep(fault.delay_s)
            return Response(status_code=504)
        return Response(status_code=fault.status)
    handler, needs_token = entry
    token = _bearer(request)
    if needs_token and not gw.tokens.is_valid(token):
        return Response(status_code=401)
    client = request.client.host if request.client is not None else "?"
    limiter = gw.history if key == "history/retrievebars" else gw.general
    retry = limiter.hit(token or f"ip:{client}")
    if retry is not None:
        return Response(status_code=429, headers={"Retry-After": str(retry)})
    raw = await request.body()
    try:
        body = loads(raw, gw.limits) if raw.strip() else {}
    except JsonLimitError as exc:
        return problem({"$": [f"The request body is not accepted: {exc.message}."]})
    if not isinstance(body, dict):
        return problem({"$": ["The request body must be a JSON object."]})
    try:
        out = handler(gw, body, token)
    except BadRequestError as exc:
        return problem({exc.field: [exc.message]})
    if isinstance(out, Response):
        return out
    return JSONResponse(out)


def create_app(config: GatewayConfig, *, feeds: list[FeedData] | None = None, now_ns: int | None = None) -> FastAPI:
    """The gateway as a FastAPI app (module docstring); ``app.state.gateway`` is its :class:`Gateway`.

    Args:
        config: the configuration.
        feeds: pre-loaded feed data (tests); loaded from ``config.feeds`` when ``None``.
        now_ns: the start time (UTC ns, default now).

    Raises:
        DataError: a feed file is missing or malformed.
    """
    gw = Gateway(config, feeds=feeds, now_ns=now_ns)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(
        title=OPENAPI_TITLE,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        max_body_size=config.max_body_bytes,  # 413 before the body is read (Content-Length) or once it exceeds
    )
    app.state.gateway = gw
    document = build_openapi(OPENAPI_TITLE, OPENAPI_VERSION)

    async def openapi(_: Request) -> Response:
        return JSONResponse(document)

    app.add_route(OPENAPI_PATH, openapi, methods=["GET"])

    async def api(request: Request) -> Response:
        return await _handle(gw, request, request.path_params["path"])

    route: Callable[[Request], Awaitable[Response]] = api
    app.add_route("/api/{path:path}", route, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    for h in gw.hubs.values():
        app.router.routes.extend(h.routes())
    app.router.routes.extend(
        admin_routes(gw.faults, gw.hubs, gw.tokens, gw.market, admin_token=config.admin_token, limits=gw.limits)
    )
    install_guards(app, config)
    return app
