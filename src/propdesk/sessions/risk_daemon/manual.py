"""Trades placed "by hand at the broker", scripted: the stand-in for the TopstepX UI in a simulated ``propdesk risk``.

A manual script is a JSON-lines file, one order per line, in time order or not (they are sorted)::

    {"ts": "2025-10-16T09:30:00-05:00", "symbol": "ESZ5", "side": "buy", "qty": 2, "type": "market"}
    {"ts": "2025-10-16T12:40:00-05:00", "symbol": "ES", "side": "buy", "qty": 1, "type": "limit", "price": 6660.00}

Fields: ``ts`` (ISO 8601; a time without an offset is UTC), ``symbol`` (a contract such as ``ESZ5``, or its root
``ES``, which means the contract being replayed), ``side`` (``buy`` / ``sell``), ``qty`` (contracts, a positive
whole number), ``type`` (``market``, ``limit`` or ``stop``), ``price`` (points, on the contract's tick; required for
``limit`` and ``stop``, refused for ``market``) and optionally ``tif`` (``day``, the default, or ``gtc``). Blank lines
and lines starting with ``#`` are skipped.

:class:`ManualTrader` submits each order **straight to the simulated broker** when the replay clock reaches its
``ts`` (a :class:`~propdesk.core.clock.SimClock` alert): not through propdesk's order manager and not through the
pre-trade gate, exactly like an order typed into the broker's own UI. Its client order id is ``ext-manual-<line>``,
so the node sees it as a foreign order (``ext-...``, tag ``manual``) and the account guard judges its fills like any
other (``../shared/specs/risk-rules.md`` section 7.3: "Users can trade manually in the TopstepX UI").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from propdesk.core.clock import Clock, TimeEvent
from propdesk.core.errors import DataError, PropdeskError
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType, TimeInForce
from propdesk.model.price import Price

__all__ = ["MANUAL_ID_PREFIX", "ManualOrder", "ManualTrader", "OrderTaker", "load_manual_script"]

MANUAL_ID_PREFIX: Final[str] = "ext-manual-"
"""Client order id prefix of scripted manual orders (``ext-``: an order propdesk did not place)."""

_TYPES: Final[dict[str, OrderType]] = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP}
_SIDES: Final[dict[str, Side]] = {"buy": Side.BUY, "sell": Side.SELL}
_TIFS: Final[dict[str, TimeInForce]] = {"day": TimeInForce.DAY, "gtc": TimeInForce.GTC}
_KEYS: Final[frozenset[str]] = frozenset({"ts", "symbol", "side", "qty", "type", "price", "tif"})


class OrderTaker(Protocol):
    """Where manual orders are placed (:class:`~propdesk.brokers.sim.SimBroker` fits)."""

    def submit_order(self, order: Order) -> None:
        """Accept or reject ``order``; outcomes arrive as the broker's events."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualOrder:
    """One scripted manual order.

    Attributes:
        line: the 1-based line of the script (also the order's id: ``ext-manual-<line>``).
        ts_ns: when it is placed, UTC ns.
        symbol: the contract (``ESZ5``) or a root (``ES``, resolved by :class:`ManualTrader`).
        side: buy or sell; qty: contracts (> 0).
        order_type: MARKET, LIMIT or STOP; price: the limit or stop price (points), ``None`` for MARKET.
        tif: DAY (default) or GTC.
    """

    line: int
    ts_ns: int
    symbol: str
    side: Side
    qty: int
    order_type: OrderType
    price: Price | None = None
    tif: TimeInForce = TimeInForce.DAY

    @property
    def client_order_id(self) -> ClientOrderId:
        """``ext-manual-<line>``."""
        return ClientOrderId(f"{MANUAL_ID_PREFIX}{self.line}")

    def describe(self) -> str:
        """``BUY 2 ESZ5 market`` / ``BUY 1 ESZ5 limit 6660.00``."""
        px = "" if self.price is None else f" {self.price}"
        return f"{self.side.name} {self.qty} {self.symbol} {self.order_type.value}{px}"


def _parse_ts(value: object, path: Path, line: int) -> int:
    if not isinstance(value, str) or not value.strip():
        raise DataError("'ts' must be an ISO 8601 time string", path=path, row=line)
    text = value.strip().replace("Z", "+00:00") if value.strip().endswith("Z") else value.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"'ts' {value!r} is not an ISO 8601 time", path=path, row=line) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _parse_line(obj: Any, path: Path, line: int) -> ManualOrder:
    if not isinstance(obj, dict):
        raise DataError("each line must be a JSON object", path=path, row=line)
    unknown = set(obj) - _KEYS
    if unknown:
        raise DataError(f"unknown field(s) {', '.join(sorted(unknown))}", path=path, row=line)
    for key in ("ts", "symbol", "side", "qty", "type"):
        if key not in obj:
            raise DataError(f"missing field {key!r}", path=path, row=line)
    symbol = obj["symbol"]
    if not isinstance(symbol, str) or not symbol.strip():
        raise DataError("'symbol' must be a contract such as ESZ5 or a root such as ES", path=path, row=line)
    side = _SIDES.get(str(obj["side"]).lower())
    if side is None:
        raise DataError(f"'side' {obj['side']!r} is not buy or sell", path=path, row=line)
    qty = obj["qty"]
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        raise DataError(f"'qty' {qty!r} is not a positive whole number of contracts", path=path, row=line)
    otype = _TYPES.get(str(obj["type"]).lower())
    if otype is None:
        raise DataError(f"'type' {obj['type']!r} is not one of: {', '.join(_TYPES)}", path=path, row=line)
    raw_px = obj.get("price")
    price: Price | None = None
    if otype is OrderType.MARKET:
        if raw_px is not None:
            raise DataError("a market order takes no 'price'", path=path, row=line)
    else:
        if raw_px is None or isinstance(raw_px, bool) or not isinstance(raw_px, int | float | str):
            raise DataError(f"a {otype.value} order needs a 'price' (points)", path=path, row=line)
        try:
            price = Price.of(raw_px)
        except PropdeskError as exc:
            raise DataError(f"'price' {raw_px!r}: {exc}", path=path, row=line) from None
        if price.raw <= 0:
            raise DataError(f"'price' {raw_px!r} must be positive", path=path, row=line)
    tif = _TIFS.get(str(obj.get("tif", "day")).lower())
    if tif is None:
        raise DataError(f"'tif' {obj.get('tif')!r} is not day or gtc", path=path, row=line)
    return ManualOrder(
        line=line,
        ts_ns=_parse_ts(obj["ts"], path, line),
        symbol=symbol.strip(),
        side=side,
        qty=qty,
        order_type=otype,
        price=price,
        tif=tif,
    )


def load_manual_script(path: str | Path) -> list[ManualOrder]:
    """Read a manual script (see the module docstring), sorted by time (ties in file order).

    Raises:
        DataError: the file cannot be read, or a line is not valid (the error names the file and the line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read the manual script: {exc.strerror or exc}", path=p) from None
    out: list[ManualOrder] = []
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DataError(f"not JSON ({exc.msg})", path=p, row=n) from None
        out.append(_parse_line(obj, p, n))
    out.sort(key=lambda o: (o.ts_ns, o.line))
    return out


class ManualTrader:
    """Places scripted manual orders straight at the broker when the clock reaches their time.

    Args:
        clock: the replay's clock (a ``SimClock``): each order is a one-shot alert at its ``ts_ns``.
        broker: where the orders go (the ``SimBroker``; never the order manager or the gate).
        account_id: the account the orders are for.
        orders: the script (:func:`load_manual_script`).
        resolve_symbol: maps a script symbol to the contract traded (e.g. the root ``ES`` to ``ESZ5``); default:
            unchanged.
        on_placed: called with each order right after it was handed to the broker.

    Attributes:
        placed: orders handed to the broker so far, in order; pending: those not yet due.
    """

    def __init__(
        self,
        clock: Clock,
        broker: OrderTaker,
        *,
        account_id: AccountId,
        orders: Sequence[ManualOrder],
        resolve_symbol: Callable[[str], str] | None = None,
        on_placed: Callable[[ManualOrder], None] | None = None,
    ) -> None:
        self._clock = clock
        self._broker = broker
        self._account_id = account_id
        self._resolve = resolve_symbol if resolve_symbol is not None else _same
        self._on_placed = on_placed
        self.orders: list[ManualOrder] = list(orders)
        self.placed: list[ManualOrder] = []
        self._by_timer: dict[str, ManualOrder] = {}
        self._armed = False

    @property
    def pending(self) -> list[ManualOrder]:
        """Scripted orders not placed yet (their time has not come)."""
        done = {o.line for o in self.placed}
        return [o for o in self.orders if o.line not in done]

    def arm(self) -> None:
        """Set one clock alert per scripted order (orders already due are placed at the clock's next advance).
        Idempotent."""
        if self._armed:
            return
        self._armed = True
        for order in self.orders:
            name = f"risk.manual.{self._account_id}.{order.line}"
            self._by_timer[name] = order
            self._clock.set_time_alert(name, order.ts_ns, self._on_due, allow_past=True)

    def disarm(self) -> None:
        """Cancel the alerts of the orders not placed yet."""
        for name in list(self._by_timer):
            self._clock.cancel_timer(name)
        self._by_timer.clear()
        self._armed = False

    def _on_due(self, event: TimeEvent) -> None:
        order = self._by_timer.pop(event.name, None)
        if order is not None:
            self.place(order)

    def place(self, order: ManualOrder) -> Order:
        """Hand ``order`` to the broker now (the broker answers with its events: accepted or rejected).

        Returns:
            The :class:`~propdesk.model.orders.Order` sent (tag ``manual``).
        """
        is_stop = order.order_type is OrderType.STOP
        sent = Order(
            order.client_order_id,
            self._account_id,
            self._resolve(order.symbol),
            order.side,
            order.qty,
            order.order_type,
            limit_price=order.price if order.order_type is OrderType.LIMIT else None,
            stop_price=order.price if is_stop else None,
            tif=order.tif,
            tag="manual",
            ts_init_ns=self._clock.timestamp_ns(),
        )
        self._broker.submit_order(sent)
        self.placed.append(order)
        if self._on_placed is not None:
            self._on_placed(order)
        return sent


def _same(symbol: str) -> str:
    return symbol
