"""project-x-py 4.x driven against ``propdesk gateway``: run by a Python 3.12 interpreter, never imported by pytest.

Used by ``tests/integration/test_projectx_py_client.py``. It uses project-x-py's public API, changed only in its
URLs (``../shared/specs/projectx-gateway-api.md`` section 1.1, "Pointing real clients at the server"):

1. ``ProjectX(username, api_key, config=ProjectXConfig(api_url=..., user_hub_url=..., market_hub_url=...))``:
   ``authenticate()``, ``list_accounts()``, ``get_instrument("ES")``, ``get_bars("ES", ...)``.
2. ``TradingSuite.create("ES", ...)`` with ``project_x_py.client.base.ProjectXConfig`` patched to return the same
   config (``create()`` otherwise builds ``ProjectXConfig()`` with the TopstepX hosts): it logs in, subscribes to the
   user hub and the ES market data, loads bars; then a limit order far from the market is placed and cancelled
   (``ORDER_PLACED``, ``ORDER_CANCELLED``), a market order is placed (``ORDER_FILLED``, ``POSITION_OPENED``) and the
   position is closed with ``close_position_direct`` (``POSITION_CLOSED``).

Usage: ``python pxpy_client_script.py BASE_URL USER API_KEY ACCOUNT_NAME``. Prints progress on stderr and exactly
one line ``PXPY_RESULT {json}`` on stdout: ``{"steps": {name: {"ok": bool, ...details}}, "error": str | null}``.
Every wait is bounded; the script exits by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

STEP_TIMEOUT_S = 20.0


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries only the result line)."""
    print(f"[pxpy {time.monotonic():.3f}] {msg}", file=sys.stderr, flush=True)


async def run(base: str, user: str, api_key: str, account_name: str, steps: dict[str, dict[str, Any]]) -> None:
    """Drive every step, recording each outcome in ``steps`` as it completes."""
    # imported here so a missing or broken project-x-py is reported in the result line
    import project_x_py.client.base as client_base  # noqa: PLC0415
    from project_x_py import EventType, ProjectX, TradingSuite  # noqa: PLC0415
    from project_x_py.models import ProjectXConfig  # noqa: PLC0415

    cfg = ProjectXConfig(api_url=f"{base}/api", user_hub_url=f"{base}/hubs/user", market_hub_url=f"{base}/hubs/market")
    steps["version"] = {"ok": True, "project_x_py": version("project-x-py"), "python": sys.version.split()[0]}

    # ---- 1. the low-level client
    async with ProjectX(user, api_key, config=cfg, account_name=account_name) as client:
        await client.authenticate()
        acct = client.get_account_info()
        steps["login"] = {"ok": bool(client.session_token) and acct.name == account_name, "account_id": acct.id}
        accounts = await client.list_accounts()
        steps["accounts"] = {
            "ok": len(accounts) >= 1,
            "ids": [a.id for a in accounts],
            "names": [a.name for a in accounts],
        }
        inst = await client.get_instrument("ES")
        steps["contract"] = {
            "ok": inst.id.startswith("CON.F.US.EP."),
            "id": inst.id,
            "name": inst.name,
            "tick_size": inst.tickSize,
            "tick_value": inst.tickValue,
        }
        bars = await client.get_bars("ES", days=2, interval=1, unit=2)
        closes = bars["close"].to_list() if bars.height else []
        steps["bars"] = {
            "ok": bars.height > 0 and all(c > 0 for c in closes),
            "count": bars.height,
            "columns": bars.columns,
            "last_close": closes[-1] if closes else None,
        }
        log(f"low-level client done: {inst.id}, {bars.height} bars")

    # ---- 2. TradingSuite (realtime), redirected by the config patch of spec 1.1
    client_base.ProjectXConfig = lambda: cfg  # type: ignore[assignment,misc,return-value]
    received: dict[str, list[Any]] = {}

    def recorder(name: str) -> Any:
        async def handler(event: Any) -> None:
            data = getattr(event, "data", event)
            received.setdefault(name, []).append(data)

        return handler

    async def wait_for(name: str, pred: Any = None, timeout: float = STEP_TIMEOUT_S) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for d in received.get(name, []):
                if pred is None or pred(d):
                    return d
            await asyncio.sleep(0.05)
        return None

    suite = await asyncio.wait_for(
        TradingSuite.create(
            "ES", timeframes=["1min"], initial_days=1, username=user, api_key=api_key, account_name=account_name
        ),
        timeout=60,
    )
    try:
        names = {
            "placed": EventType.ORDER_PLACED,
            "filled": EventType.ORDER_FILLED,
            "cancelled": EventType.ORDER_CANCELLED,
            "rejected": EventType.ORDER_REJECTED,
            "pos_opened": EventType.POSITION_OPENED,
            "pos_closed": EventType.POSITION_CLOSED,
            "pos_updated": EventType.POSITION_UPDATED,
            "quote": EventType.QUOTE_UPDATE,
            "trade_tick": EventType.TRADE_TICK,
            "new_bar": EventType.NEW_BAR,
        }
        for name, et in names.items():
            await suite.on(et, recorder(name))
        rt = suite.realtime
        # the raw hub events as the realtime client forwards them (GatewayUserOrder / Trade / Position, market)
        for raw in ("order_update", "trade_execution", "position_update", "quote_update", "market_trade"):
            await rt.add_callback(raw, recorder("hub." + raw))
        cid = suite.instrument_id
        assert cid is not None
        steps["realtime"] = {
            "ok": bool(suite.is_connected) and bool(rt.user_connected) and bool(rt.market_connected),
            "user_connected": bool(rt.user_connected),
            "market_connected": bool(rt.market_connected),
            "contract_id": cid,
        }
        data = suite.data
        hist = await data.get_data("1min")
        steps["suite_bars"] = {"ok": hist is not None and hist.height > 0, "count": 0 if hist is None else hist.height}
        q = await wait_for("quote")
        price = await data.get_current_price()
        steps["market_data"] = {"ok": q is not None and price is not None and price > 0, "price": price}
        log(f"suite connected: {cid}, price {price}")

        tick = float(suite.instrument.tickSize)
        # a buy limit ~500 points under the market: rests, never fills
        far = round((price - 2000 * tick) / tick) * tick
        resp = await suite.orders.place_limit_order(cid, 0, 1, far)
        lim_id = resp.orderId
        placed = await wait_for("placed", lambda d: _order_id(d) == lim_id)
        hub_open = await wait_for("hub.order_update", lambda d: _field(d, "id") == lim_id and _field(d, "status") == 1)
        ok_cancel = await suite.orders.cancel_order(lim_id)
        hub_cancel = await wait_for(
            "hub.order_update", lambda d: _field(d, "id") == lim_id and _field(d, "status") == 3
        )
        # ORDER_CANCELLED is emitted only when the hub's status-3 event beats the REST reply: project-x-py's
        # cancel_order() caches status 3 on REST success, and the later hub event is then no status change.
        cancelled = await wait_for("cancelled", lambda d: _order_id(d) == lim_id, timeout=0.5)
        steps["limit_place_cancel"] = {
            "ok": bool(resp.success)
            and placed is not None
            and hub_open is not None
            and ok_cancel
            and hub_cancel is not None,
            "order_id": lim_id,
            "limit_price": far,
            "order_placed_event": placed is not None,
            "hub_order_open": hub_open is not None,
            "cancel_returned": ok_cancel,
            "hub_order_cancelled": hub_cancel is not None,
            "order_cancelled_event": cancelled is not None,
        }
        log(f"limit {lim_id} placed/cancelled: {steps['limit_place_cancel']}")

        t0 = time.perf_counter()
        resp = await suite.orders.place_market_order(cid, 0, 1)
        mkt_id = resp.orderId
        filled = await wait_for("filled", lambda d: _order_id(d) == mkt_id)
        fill_ms = (time.perf_counter() - t0) * 1000
        hub_trade = await wait_for("hub.trade_execution", lambda d: _field(d, "orderId") == mkt_id)
        hub_pos = await wait_for(
            "hub.position_update", lambda d: _field(d, "contractId") == cid and _field(d, "size") == 1
        )
        opened = await wait_for("pos_opened", lambda d: _contract(d) == cid)
        positions = await suite.positions.get_all_positions()
        pos = next((p for p in positions if p.contractId == cid), None)
        steps["market_fill"] = {
            "ok": bool(resp.success)
            and filled is not None
            and hub_trade is not None
            and hub_pos is not None
            and opened is not None
            and pos is not None
            and pos.size == 1,
            "order_id": mkt_id,
            "order_filled_event": filled is not None,
            "hub_trade": hub_trade is not None,
            "hub_trade_price": _field(hub_trade, "price"),
            "hub_position": hub_pos is not None,
            "position_opened_event": opened is not None,
            "position_size": None if pos is None else pos.size,
            "position_type": None if pos is None else pos.type,
            "average_price": None if pos is None else pos.averagePrice,
            "place_to_fill_ms": round(fill_ms, 1),
        }
        log(f"market {mkt_id}: {steps['market_fill']}")

        close = await suite.positions.close_position_direct(cid)
        closed = await wait_for("pos_closed", lambda d: _contract(d) == cid)
        hub_flat = await wait_for(
            "hub.position_update", lambda d: _field(d, "contractId") == cid and _field(d, "size") == 0
        )
        after = await suite.positions.get_all_positions()
        flat = not any(p.contractId == cid and p.size != 0 for p in after)
        steps["close_position"] = {
            "ok": bool(close.get("success")) and closed is not None and hub_flat is not None and flat,
            "response": {k: close.get(k) for k in ("success", "orderId", "errorMessage")},
            "position_closed_event": closed is not None,
            "hub_position_size_0": hub_flat is not None,
            "flat": flat,
        }
        log(f"close: {steps['close_position']}")
        steps["events"] = {"ok": True, "counts": {k: len(v) for k, v in received.items()}}
    finally:
        await asyncio.wait_for(suite.disconnect(), timeout=20)


def _order_id(d: Any) -> int | None:
    """The order id in an order event's data (a dict with ``order_id`` / ``orderId`` / an ``order`` object)."""
    if isinstance(d, dict):
        for k in ("order_id", "orderId", "id"):
            if d.get(k) is not None:
                return int(d[k])
        o = d.get("order")
        if o is not None:
            return int(o["id"]) if isinstance(o, dict) else int(o.id)
        inner = d.get("data")
        if isinstance(inner, dict):
            return _order_id(inner)
    return None


def _field(d: Any, key: str) -> Any:
    """``key`` in a raw hub event, whatever its wrapping (``{action, data}``, ``[accountId, {...}]``, nested)."""
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            if isinstance(v, (dict, list)):
                hit = _field(v, key)
                if hit is not None:
                    return hit
    elif isinstance(d, (list, tuple)):
        for v in d:
            hit = _field(v, key)
            if hit is not None:
                return hit
    return None


def _contract(d: Any) -> str | None:
    """The contract id in a position event's data."""
    if isinstance(d, dict):
        if d.get("contractId") is not None:
            return str(d["contractId"])
        inner = d.get("data") or d.get("position")
        if isinstance(inner, dict):
            return _contract(inner)
        if inner is not None and hasattr(inner, "contractId"):
            return str(inner.contractId)
    return None


def main() -> None:
    """Entry point: see the module docstring."""
    base, user, api_key, account_name = sys.argv[1:5]
    logging.basicConfig(level=os.environ.get("PXPY_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    steps: dict[str, dict[str, Any]] = {}
    error: str | None = None
    try:
        asyncio.run(asyncio.wait_for(run(base, user, api_key, account_name, steps), timeout=150))
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    out = {"steps": steps, "error": error, "finished_utc": datetime.now(UTC).isoformat()}
    print("PXPY_RESULT " + json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    main()
