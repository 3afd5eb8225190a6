"""Test stubs: a ProjectX REST emulator behind ``httpx.MockTransport`` and a scripted SignalR client.

The emulator keeps accounts, contracts, orders, trades and positions and answers the spec's envelopes
(``../shared/specs/projectx-gateway-api.md`` section 3). Faults are queued per endpoint: ``"timeout"`` raises
``httpx.ReadTimeout`` (after applying the request when ``apply=True``), an int answers that HTTP status.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


def make_jwt(exp: float, sub: str = "u") -> str:
    def seg(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{seg({'alg': 'HS256'})}.{seg({'exp': int(exp), 'sub': sub})}.sig"


ES = {
    "id": "CON.F.US.EP.Z25",
    "name": "ESZ5",
    "description": "E-mini S&P 500",
    "tickSize": 0.25,
    "tickValue": 12.5,
    "activeContract": True,
    "symbolId": "F.US.EP",
}


@dataclass
class Fault:
    kind: str | int  # "timeout" or an HTTP status
    apply: bool = False  # process the request before failing (the server did it; the client cannot know)
    retry_after: str | None = None


@dataclass
class FakeProjectX:
    """A ProjectX REST emulator (see the module docstring)."""

    now: Callable[[], float]
    token_ttl_s: float = 86400.0
    account_id: int = 1001
    contract_by_id_shape: str = "contract"
    bracket_mode: str = "position"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    next_id: int = 500
    tokens_issued: int = 0
    validate_ok: bool = True

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def count(self, endpoint: str) -> int:
        return sum(1 for e, _ in self.calls if e == endpoint)

    def _token(self) -> str:
        self.tokens_issued += 1
        tok = make_jwt(self.now() + self.token_ttl_s, sub=f"t{self.tokens_issued}")
        self.valid_tokens.add(tok)
        return tok

    @staticmethod
    def ok(**payload: Any) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "errorCode": 0, "errorMessage": None, **payload})

    @staticmethod
    def fail(code: int, msg: str | None = None, **payload: Any) -> httpx.Response:
        return httpx.Response(200, json={"success": False, "errorCode": code, "errorMessage": msg, **payload})

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/")
        body = json.loads(request.content or b"{}") if request.method == "POST" else {}
        self.calls.append((path, body))
        fault = self.faults[path].popleft() if self.faults[path] else None
        if fault is not None and not fault.apply:
            return self._fault(fault, request)
        if path != "Auth/loginKey":
            auth = request.headers.get("Authorization", "")
            tok = auth.removeprefix("Bearer ")
            if tok not in self.valid_tokens:
                resp = httpx.Response(401)
                return self._fault(fault, request) if fault else resp
        resp = self.route(path, body)
        return self._fault(fault, request) if fault is not None else resp

    def _fault(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault.kind == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return httpx.Response(int(fault.kind), headers=headers, text="")

    def order(self, **kw: Any) -> dict[str, Any]:
        self.next_id += 1
        o = {
            "id": self.next_id,
            "accountId": self.account_id,
            "contractId": ES["id"],
            "symbolId": "F.US.EP",
            "creationTimestamp": "2025-11-20T15:01:02.123456+00:00",
            "updateTimestamp": "2025-11-20T15:01:02.123456+00:00",
            "status": 1,
            "type": 1,
            "side": 0,
            "size": 1,
            "limitPrice": None,
            "stopPrice": None,
            "fillVolume": 0,
            "filledPrice": None,
            "customTag": None,
        }
        o.update(kw)
        self.orders[o["id"]] = o
        return o

    def route(self, path: str, body: dict[str, Any]) -> httpx.Response:
        if path == "Auth/loginKey":
            if body.get("apiKey") != "secret-key":
                return self.fail(3, "bad credentials", token=None)
            return self.ok(token=self._token())
        if path == "Auth/validate":
            if not self.validate_ok:
                return self.fail(3, "expired", newToken=None)
            return self.ok(newToken=self._token())
        if path == "Account/search":
            return self.ok(
                accounts=[
                    {
                        "id": self.account_id,
                        "name": "PRAC-1",
                        "balance": 50000.0,
                        "canTrade": True,
                        "isVisible": True,
                        "simulated": True,
                    }
                ]
            )
        if path == "Contract/search":
            return self.ok(contracts=[ES] if body["searchText"] in ("ES", "ESZ5") else [])
        if path == "Contract/searchById":
            if body["contractId"] != ES["id"]:
                return self.fail(1, "not found", contract=None)
            if self.contract_by_id_shape == "contracts":
                return self.ok(contracts=[ES])
            return self.ok(contract=ES)
        if path == "Contract/available":
            return self.ok(contracts=[ES])
        if path == "History/retrieveBars":
            return self.ok(bars=self.bars(body))
        if path == "Order/place":
            tag = body.get("customTag")
            if tag and any(o["customTag"] == tag for o in self.orders.values()):
                return self.fail(2, "customTag must be unique", orderId=None)
            if body.get("stopLossBracket") and self.bracket_mode == "position":
                o = self.order(status=5, customTag=tag, type=body["type"], side=body["side"], size=body["size"])
                return self.fail(
                    2,
                    "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets.",
                    orderId=o["id"],
                )
            o = self.order(
                customTag=tag,
                type=body["type"],
                side=body["side"],
                size=body["size"],
                limitPrice=body.get("limitPrice"),
                stopPrice=body.get("stopPrice"),
                status=6 if body["type"] == 2 else 1,
            )
            return self.ok(orderId=o["id"])
        if path == "Order/modify":
            o = self.orders.get(body["orderId"])
            if o is None or o["status"] not in (1, 8):
                return self.fail(2, "order not found")
            for k in ("size", "limitPrice", "stopPrice"):
                if k in body:
                    o[k] = body[k]
            return self.ok()
        if path == "Order/cancel":
            o = self.orders.get(body["orderId"])
            if o is None or o["status"] not in (1, 6, 8):
                return self.fail(2, "order not found")
            o["status"] = 3
            return self.ok()
        if path == "Order/searchOpen":
            return self.ok(orders=[o for o in self.orders.values() if o["status"] in (1, 6)])
        if path == "Order/search":
            return self.ok(orders=list(self.orders.values()))
        if path == "Order/searchById":
            return self.ok(order=self.orders.get(body["orderId"]))
        if path == "Order/v2/query":
            st = body["filter"].get("statuses")
            return self.ok(
                orders=[o for o in self.orders.values() if st is None or o["status"] in st],
                totalCount=len(self.orders),
            )
        if path == "Position/searchOpen":
            return self.ok(positions=[p for p in self.positions if p["size"] > 0])
        if path in ("Position/closeContract", "Position/partialCloseContract"):
            pos = next((p for p in self.positions if p["contractId"] == body["contractId"] and p["size"]), None)
            if pos is None:
                return self.fail(2, "position not found")
            size = body.get("size", pos["size"])
            if path.startswith("Position/partial") and size >= pos["size"]:
                return self.fail(5, "invalid close size")
            pos["size"] -= size
            o = self.order(type=2, side=1 if pos["type"] == 1 else 0, size=size, status=2, fillVolume=size)
            return self.ok(orderId=o["id"])
        if path == "Trade/search":
            return self.ok(trades=self.trades)
        return httpx.Response(404)

    def bars(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return []


class FakeHubClient:
    """A scripted SignalR client: ``run()`` opens at once and waits until :meth:`drop`; ``push`` calls handlers."""

    def __init__(self, url: str, token_factory: Callable[[], str], hub: FakeHubs) -> None:
        self.url = url
        self.token_factory = token_factory
        self.hub = hub
        self.handlers: dict[str, list[Callable[[Any], Awaitable[Any]]]] = defaultdict(list)
        self.sent: list[tuple[str, list[Any]]] = []
        self._open: Callable[[], Awaitable[None]] | None = None
        self._close: Callable[[], Awaitable[None]] | None = None
        self._dropped = asyncio.Event()

    def on(self, event: str, callback: Callable[[Any], Awaitable[Any]]) -> None:
        self.handlers[event].append(callback)

    def on_open(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._open = callback

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._close = callback

    async def send(self, method: str, arguments: Any) -> None:
        self.sent.append((method, list(arguments)))
        self.hub.log.append((self.url, method, list(arguments)))

    async def run(self) -> None:
        if self.hub.refuse:
            raise ConnectionError("refused")
        assert self._open is not None
        await self._open()
        await self._dropped.wait()
        if self._close is not None:
            await self._close()

    async def push(self, target: str, args: Any) -> None:
        for cb in self.handlers[target]:
            await cb(args)

    def drop(self) -> None:
        self._dropped.set()


class FakeHubs:
    """Factory of :class:`FakeHubClient`; ``clients`` in creation order; ``log`` of every send."""

    def __init__(self) -> None:
        self.clients: list[FakeHubClient] = []
        self.log: list[tuple[str, str, list[Any]]] = []
        self.refuse = False

    def __call__(self, url: str, token_factory: Callable[[], str]) -> FakeHubClient:
        c = FakeHubClient(url, token_factory, self)
        self.clients.append(c)
        return c

    def latest(self, hub: str) -> FakeHubClient:
        return [c for c in self.clients if f"/hubs/{hub}" in c.url][-1]


async def no_sleep(_s: float) -> None:
    await asyncio.sleep(0)
