"""The journal's capture format: what the core's thread keeps of each record, how a batch of them travels to the
writer (in this process or in the writer subprocess), and how the writer turns it into rows.

The core's thread must stay fast (issue 5: the journal may cost the ``sma_cross`` backtest under 10%, about 2 us
per record), so it does no row building, no JSON and no hashing. It keeps each record as one flat tuple (an
**item**) whose first two fields are the record's kind and its account id:

* ``OrderFilled`` (the exact class): ``(K_FILL, account, client order id, ts, reconciled, symbol, side, qty,
  price raw, fee cents, trade id, tag)`` - plain ints and strings, built by one small function;
* other order events: ``(K_ORDER, account, class code, field values...)`` - made by the class's encoder
  (:data:`ORDER_ENCODERS`, plain attribute reads);
* position events: ``(K_POSITION, account, class code, ...)`` - the snapshot and the fill part, flattened; a position
  manager's capture: ``(K_POSITION_CHANGE, account, class code, ..., position state)``
  (:func:`propdesk.model.positions.position_change_record`,
  turned into the ``K_POSITION`` item by the writer);
* rare records (risk events, audit entries, account reports and snapshots, EOD balances): ``(kind, account, record,
  extra)`` with the record object itself.

An order's state (orders are mutable) is taken once per order and batch, when the batch is cut
(:func:`order_state`); a batch is cut only between bus dispatches, when every event applied to an order has been
captured, so the state matches the events committed with it.

A batch carries its :data:`Scope` (the strategy run and the venue session of its records: one per journal, set when
the run opens, with a venue session of its own for an account whose broker differs: ``propdesk serve`` runs simulated
and ProjectX accounts on one journal), so the rows of a fill, a position change or a risk record are stamped with them
by the writer, off the core's thread.

A batch travels as bytes (:func:`dumps` / :func:`loads`): as MessagePack (:mod:`msgspec`) when it holds only plain
values (the usual case: order events, fills, position changes and order states are all plain), else with pickle protocol
5 with fast reducers for ``Price`` and ``Money`` (frozen dataclasses otherwise pickle through a Python ``__getstate__``,
~17 us a record). The writer rebuilds the records and converts them with :mod:`propdesk.storage.rows` (:func:`rows_of`),
so the rows, their JSON and their idempotency keys are exactly those the rest of the storage package writes and reads.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, Final

import msgspec

from propdesk.core import topics
from propdesk.model.enums import Side
from propdesk.model.events import _TOPICS as ORDER_EVENT_TOPICS
from propdesk.model.events import OrderEvent, OrderFilled
from propdesk.model.orders import MANUAL_TAG, OPEN, Order, OrderStatus
from propdesk.model.positions import (
    POSITION_CHANGE,
    POSITION_CODE,
    POSITION_TOPICS,
    PositionEvent,
    PositionSnapshot,
    avg_price_raw_of,
)
from propdesk.model.price import Money, Price
from propdesk.storage import rows as rw

__all__ = [
    "K_AUDIT",
    "K_EOD",
    "K_FILL",
    "K_ORDER",
    "K_POSITION",
    "K_POSITION_CHANGE",
    "K_REPORT",
    "K_RISK",
    "K_ROWS",
    "K_SNAPSHOT",
    "NO_SCOPE",
    "OBJECT_EVENTS",
    "ORDER_CODE",
    "ORDER_ENCODERS",
    "ORDER_EVENT_TOPICS",
    "ORDER_TS_INDEX",
    "POSITION_CHANGE_TS",
    "POSITION_CODE",
    "Batch",
    "Item",
    "Scope",
    "decode_fill",
    "decode_order_event",
    "decode_position",
    "dumps",
    "encode_fill",
    "encode_order_event",
    "encode_position",
    "event_rows",
    "fill_rows",
    "loads",
    "order_event_rows",
    "order_state",
    "order_state_row",
    "position_change_item",
    "position_rows",
    "rows_of",
]

Item = tuple[Any, ...]
"""One captured record: ``(kind, account id, ...)`` (see the module docstring)."""

Scope = tuple[str | None, str, tuple[tuple[int, str], ...]]
"""``(run id, venue session, per-account venue sessions)`` of a batch: the strategy run its records belong to
(``None``: outside a run), the scope the broker's trade ids are unique in (:mod:`propdesk.storage.models`), and
``(account id, venue session)`` pairs overriding that venue session for the records of those accounts; the writer
stamps every row with them."""

Batch = tuple[int, list[Item], list[tuple[Any, ...]], Scope]
"""``(last sequence number, items, order states, scope)``: what one cut of the journal sends to the writer."""

NO_SCOPE: Final[Scope] = (None, "", ())
"""The scope of records outside a run, with a broker whose trade ids are unique in the account."""

K_ORDER, K_FILL, K_POSITION, K_RISK, K_AUDIT, K_REPORT, K_SNAPSHOT, K_EOD, K_ROWS = range(9)
"""Item kinds; ``K_ROWS`` items carry ready-made ``(table, row)`` pairs (strategy runs, backtest results, the desk's
command results)."""
K_POSITION_CHANGE: Final = POSITION_CHANGE
"""The kind of a position manager's capture, the record
:func:`propdesk.model.positions.position_change_record` builds (its first field)."""

# ------------------------------------------------------------------------------------------------ order events

_ORDER_CLASSES: Final[tuple[type[OrderEvent], ...]] = tuple(ORDER_EVENT_TOPICS)
_PLAIN_FIELD_TYPES: Final = frozenset(
    {"int", "str", "bool", "ClientOrderId", "AccountId", "BrokerOrderId", "int | None", "str | None",
     "BrokerOrderId | None"}
)  # fmt: skip
"""Field annotations (strings: the model modules use ``from __future__ import annotations``) of plain values."""
ORDER_CODE: Final[dict[type[OrderEvent], int]] = {cls: i for i, cls in enumerate(_ORDER_CLASSES)}
_ORDER_NAMES: Final[tuple[tuple[str, ...], ...]] = tuple(
    tuple(f.name for f in dataclasses.fields(cls)) for cls in _ORDER_CLASSES
)


def _order_encoder(code: int, names: tuple[str, ...]) -> Callable[[Any], Item]:
    """``lambda o: (K_ORDER, o.account_id, code, o.<name>, ...)``: the whole item of an order event of one class, in
    one call. Plain attribute reads, which the interpreter specializes per call site: in the journal's cut loop this
    is several times cheaper than an :func:`operator.attrgetter`, whose generic lookups miss the type attribute cache
    there (measured in-process on the ``sma_cross`` backtest).

    Raises:
        ValueError: a name that is not a Python identifier (the names are the event dataclass's own fields).
    """
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"not an attribute name: {name!r}")
    fields = ", ".join("o." + n for n in names)
    return eval(f"lambda o: ({K_ORDER}, o.account_id, {int(code)}, {fields},)")  # type: ignore[no-any-return]


_ORDER_ENCODE: Final[tuple[Callable[[Any], Item], ...]] = tuple(
    _order_encoder(code, names) for code, names in enumerate(_ORDER_NAMES)
)
OBJECT_EVENTS: Final[frozenset[type[OrderEvent]]] = frozenset(
    cls
    for cls in _ORDER_CLASSES
    if cls is not OrderFilled and any(f.type not in _PLAIN_FIELD_TYPES for f in dataclasses.fields(cls))
)
"""The order event classes whose :data:`ORDER_ENCODERS` item holds objects (``OrderUpdated``'s prices): a batch with
one is pickled, not MessagePack (:func:`dumps`). ``OrderFilled`` has its own plain item (:func:`encode_fill`)."""
ORDER_TS_INDEX: Final[tuple[int, ...]] = tuple(3 + names.index("ts_event_ns") for names in _ORDER_NAMES)
"""Per order event code, where ``ts_event_ns`` is in its item."""


def encode_fill(e: OrderFilled) -> Item:
    """The flat item of an ``OrderFilled`` (ints and strings only)."""
    return (
        K_FILL,
        e.account_id,
        e.client_order_id,
        e.ts_event_ns,
        e.reconciled,
        e.symbol,
        e.side._value_,
        e.qty,
        e.price.raw,
        e.fee.cents,
        e.trade_id,
        e.tag,
    )


ORDER_ENCODERS: Final[dict[type[OrderEvent], Callable[[Any], Item]]] = {
    cls: encode_fill if cls is OrderFilled else _ORDER_ENCODE[code] for cls, code in ORDER_CODE.items()
}
"""Per order event class, the encoder of its item: :func:`encode_fill` for ``OrderFilled``, else
``(K_ORDER, account, code, field values...)`` (one look-up per raw event in the journal's cut)."""


def encode_order_event(event: OrderEvent) -> Item:
    """The item of an order event (any class of ``propdesk.model.events``; ``OrderFilled`` gives its fill item)."""
    return ORDER_ENCODERS[type(event)](event)


def decode_fill(it: Item) -> OrderFilled:
    return OrderFilled(
        client_order_id=it[2],
        account_id=it[1],
        ts_event_ns=it[3],
        reconciled=it[4],
        symbol=it[5],
        side=Side(it[6]),
        qty=it[7],
        price=Price(it[8]),
        fee=Money(it[9]),
        trade_id=it[10],
        tag=it[11],
    )


def decode_order_event(it: Item) -> OrderEvent:
    code = it[2]
    return _ORDER_CLASSES[code](**dict(zip(_ORDER_NAMES[code], it[3:], strict=True)))


_MAKE_C_ENCODER: Final[Any] = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODER: Final[Any] = (
    None
    if _MAKE_C_ENCODER is None
    else _MAKE_C_ENCODER(None, None, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True)
)
"""The C encoder behind ``json.dumps(..., separators=(",", ":"), sort_keys=True)``, made once (``json.dumps``
builds a new one on every call, ~3 us)."""


def _encode(value: dict[str, Any]) -> str:
    """The canonical JSON of :func:`propdesk.storage.rows.order_event_payload` (sorted keys, compact; the values
    must be JSON types already)."""
    return "".join(_C_ENCODER(value, 0))


_ENCODE: Final[Callable[[dict[str, Any]], str]] = (
    _encode if _C_ENCODER is not None else json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
)

_KIND_OF_CODE: Final[tuple[str, ...]] = tuple(ORDER_EVENT_TOPICS[cls].rsplit(".", 1)[-1] for cls in _ORDER_CLASSES)
_FILL_KIND: Final = ORDER_EVENT_TOPICS[OrderFilled].rsplit(".", 1)[-1]
_PLAIN: Final = rw._plain
_event_key: Final = rw.order_event_key


def _event_row(  # noqa: PLR0917
    kind: str, account: int, cid: str, ts: int, reconciled: bool, payload: str, run_id: str | None
) -> rw.Row:
    return {
        "account_id": int(account),
        "client_order_id": str(cid),
        "kind": kind,
        "ts_event_ns": ts,
        "reconciled": reconciled,
        "payload": payload,
        "event_key": _event_key(kind, payload),
        "run_id": run_id,
    }


def fill_rows(
    it: Item, broker_order_id: int | None, run_id: str | None = None, venue_session: str = ""
) -> tuple[rw.Row, rw.Row]:
    """The ``order_events`` and ``fills`` rows of a fill item, equal to :func:`propdesk.storage.rows.order_event_row`
    and :func:`propdesk.storage.rows.fill_row` of the event (built without rebuilding it)."""
    _k, acct, cid, ts, rec, symbol, side, qty, price_raw, fee_cents, trade_id, tag = it
    payload = _ENCODE(
        {
            "account_id": acct,
            "client_order_id": cid,
            "fee": fee_cents,
            "price": price_raw,
            "qty": qty,
            "reconciled": rec,
            "side": side,
            "symbol": symbol,
            "tag": tag,
            "trade_id": trade_id,
            "ts_event_ns": ts,
        }
    )
    fill = {
        "account_id": int(acct),
        "trade_id": trade_id,
        "client_order_id": str(cid),
        "broker_order_id": broker_order_id,
        "symbol": symbol,
        "side": side,
        "qty": qty,
        "price_raw": price_raw,
        "fee_cents": fee_cents,
        "tag": tag,
        "ts_event_ns": ts,
        "reconciled": rec,
        "run_id": run_id,
        "venue_session": venue_session,
    }
    return _event_row(_FILL_KIND, acct, cid, ts, rec, payload, run_id), fill


def order_event_rows(it: Item, run_id: str | None = None) -> rw.Row:
    """The ``order_events`` row of a (non-fill) order event item, equal to
    :func:`propdesk.storage.rows.order_event_row` of the event."""
    code, values = it[2], it[3:]
    names = _ORDER_NAMES[code]
    plain = _PLAIN
    fields: dict[str, Any] = {
        n: v if v is None or type(v) in (int, str, bool) else plain(v) for n, v in zip(names, values, strict=True)
    }
    return _event_row(
        _KIND_OF_CODE[code],
        fields["account_id"],
        fields["client_order_id"],
        fields["ts_event_ns"],
        fields["reconciled"],
        _ENCODE(fields),
        run_id,
    )


# ------------------------------------------------------------------------------------------------ positions

_POSITION_CLASSES: Final[tuple[type[PositionEvent], ...]] = tuple(POSITION_TOPICS)
_POSITION_KIND: Final[tuple[str, ...]] = tuple(POSITION_TOPICS[cls].rsplit(".", 1)[-1] for cls in _POSITION_CLASSES)


def encode_position(e: PositionEvent) -> Item:
    """The flat item of a position event (the snapshot and the fill part; ints and strings only)."""
    p = e.position
    avg = p.avg_price
    unreal = p.unrealized_pnl
    return (
        K_POSITION,
        p.account_id,
        POSITION_CODE[type(e)],
        p.symbol,
        p.tag,
        p.signed_qty,
        None if avg is None else avg.raw,
        p.realized_pnl.cents,
        p.fees.cents,
        None if unreal is None else unreal.cents,
        p.opened_ts_ns,
        p.last_ts_ns,
        p.fill_count,
        e.trade_id,
        e.tag,
        e.fill_signed_qty,
        e.fill_price.raw,
        e.fill_fee.cents,
        e.fill_realized_pnl.cents,
        e.ts_event_ns,
        e.reconciled,
    )


POSITION_CHANGE_TS: Final = 10
"""Where the event time is in a position change record."""


def position_change_item(it: Item) -> Item:
    """The ``K_POSITION`` item of a position change record
    (:func:`propdesk.model.positions.position_change_record`; equal to :func:`encode_position` of the event the
    position manager publishes for that change)."""
    (_k, _acct, code, unrealized, signed_qty, fee_cents, realized_cents, trade_id, tag, price_raw, ts, reconciled,
     acct, symbol, ptag, qty, open_ticks, tick_raw, realized, fees, opened, last, count) = it  # fmt: skip
    return (
        K_POSITION,
        acct,
        code,
        symbol,
        ptag,
        qty,
        avg_price_raw_of(open_ticks, tick_raw, qty),
        realized,
        fees,
        unrealized if qty else None,
        opened,
        last,
        count,
        trade_id,
        tag or MANUAL_TAG,
        signed_qty,
        price_raw,
        fee_cents,
        realized_cents,
        ts,
        reconciled,
    )


def decode_position(it: Item) -> PositionEvent:
    snap = PositionSnapshot(
        symbol=it[3],
        account_id=it[1],
        tag=it[4],
        signed_qty=it[5],
        avg_price=None if it[6] is None else Price(it[6]),
        realized_pnl=Money(it[7]),
        fees=Money(it[8]),
        unrealized_pnl=None if it[9] is None else Money(it[9]),
        opened_ts_ns=it[10],
        last_ts_ns=it[11],
        fill_count=it[12],
    )
    return _POSITION_CLASSES[it[2]](
        position=snap,
        trade_id=it[13],
        tag=it[14],
        fill_signed_qty=it[15],
        fill_price=Price(it[16]),
        fill_fee=Money(it[17]),
        fill_realized_pnl=Money(it[18]),
        ts_event_ns=it[19],
        reconciled=it[20],
    )


# ------------------------------------------------------------------------------------------------ orders


def order_state(o: Order) -> tuple[Any, ...]:
    """The order's state at this moment as plain values, the fields its ``orders`` row is built from
    (:func:`order_state_row` reads them in this order): enums as their values, prices as their fixed-point ``raw``
    ints (or None), the fees as cents, so the whole batch is plain values (:func:`dumps`). Plain attribute reads,
    which the interpreter specializes (see :func:`_order_encoder`)."""
    limit = o.limit_price
    stop = o.stop_price
    return (
        o.account_id,
        o.client_order_id,
        o.broker_order_id,
        o.symbol,
        o.side._value_,
        o.qty,
        o.order_type._value_,
        None if limit is None else limit.raw,
        None if stop is None else stop.raw,
        o.trail_ticks,
        o.tif._value_,
        o.tag,
        o.reduce_only,
        o.parent_id,
        o.linked_ids,
        o.status._value_,
        o.filled_qty,
        o.fees.cents,
        o._fill_notional_raw,
        o.reason,
        o.ts_init_ns,
        o.ts_last_ns,
    )


def order_state_row(state: tuple[Any, ...], run_id: str | None = None) -> rw.Row:
    """The ``orders`` row of an order state (:data:`order_state`), equal to :func:`propdesk.storage.rows.order_row`
    of the order at that moment."""
    (acct, cid, broker_id, symbol, side, qty, otype, limit, stop, trail, tif, tag, reduce_only, parent, linked,
     status, filled, fees, notional, reason, ts_init, ts_last) = state  # fmt: skip
    return {
        "account_id": int(acct),
        "client_order_id": str(cid),
        "broker_order_id": None if broker_id is None else int(broker_id),
        "symbol": symbol,
        "side": int(side),
        "qty": qty,
        "order_type": otype,
        "limit_price_raw": limit,
        "stop_price_raw": stop,
        "trail_ticks": trail,
        "tif": tif,
        "tag": tag,
        "reduce_only": reduce_only,
        "parent_id": None if parent is None else str(parent),
        "linked_ids": json.dumps([str(i) for i in linked]) if linked else "[]",  # json.dumps costs ~3 us
        "status": status,
        "is_open": OrderStatus(status) in OPEN,
        "filled_qty": filled,
        "fees_cents": fees,
        "fill_notional_raw": notional,
        "reason": reason,
        "ts_init_ns": ts_init,
        "ts_last_ns": ts_last,
        "run_id": run_id,
    }


def position_rows(it: Item, run_id: str | None = None, venue_session: str = "") -> rw.Row:
    """The ``position_snapshots`` row of a position item, equal to :func:`propdesk.storage.rows.position_event_row`
    of the event."""
    (_k, acct, code, symbol, ptag, signed_qty, avg_raw, realized, fees, unreal, opened, last, count, trade_id, tag,
     fill_qty, fill_price, fill_fee, fill_pnl, ts, rec) = it  # fmt: skip
    return {
        "account_id": int(acct),
        "symbol": symbol,
        "position_tag": ptag or "",
        "kind": _POSITION_KIND[code],
        "trade_id": trade_id,
        "tag": tag,
        "signed_qty": signed_qty,
        "avg_price_raw": avg_raw,
        "realized_pnl_cents": realized,
        "fees_cents": fees,
        "unrealized_pnl_cents": unreal,
        "opened_ts_ns": opened,
        "last_ts_ns": last,
        "fill_count": count,
        "fill_signed_qty": fill_qty,
        "fill_price_raw": fill_price,
        "fill_fee_cents": fill_fee,
        "fill_realized_pnl_cents": fill_pnl,
        "ts_event_ns": ts,
        "reconciled": rec,
        "run_id": run_id,
        "venue_session": venue_session,
    }


# ------------------------------------------------------------------------------------------------ batches


def _reduce_price(p: Price) -> tuple[type[Price], tuple[int]]:
    return Price, (p.raw,)


def _reduce_money(m: Money) -> tuple[type[Money], tuple[int]]:
    return Money, (m.cents,)


_DISPATCH: Final[dict[type, Callable[[Any], Any]]] = {Price: _reduce_price, Money: _reduce_money}


_PACKED: Final = b"K"
_PICKLED: Final = b"P"
_MSGPACK: Final = msgspec.msgpack.Encoder()
_UNPACK: Final = msgspec.msgpack.Decoder(
    tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]], tuple[str | None, str, tuple[tuple[int, str], ...]]]
)
"""The batch's shape: items and order states come back as tuples (arrays nested in them, e.g. an order's linked ids,
as lists)."""


def dumps(batch: Batch, *, plain: bool = True) -> bytes:
    """``batch`` as bytes. ``plain`` (the caller's word that every value in it is an int, str, bool, float, None,
    tuple or list of those: the order events, fills, position changes and order states of a cut): MessagePack
    (:mod:`msgspec`, in C: about 4x faster than :mod:`marshal` on a cut's batch, measured on the ``sma_cross``
    backtest). Otherwise, or if MessagePack cannot take a value (an int beyond 64 bits), pickle protocol 5 with the
    fast reducers of the module docstring (a risk event, an audit entry, a modify's prices...). The first byte says
    which.

    ``plain`` must be False when an object may be inside: MessagePack would write a dataclass (``Price`` too) as a
    map of its fields, not refuse it."""
    if plain:
        try:
            return _PACKED + _MSGPACK.encode(batch)
        except (TypeError, OverflowError, ValueError):
            pass
    buf = io.BytesIO()
    buf.write(_PICKLED)
    pickler = pickle.Pickler(buf, protocol=5)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(batch)
    return buf.getvalue()


def loads(data: bytes) -> Batch:
    """The batch :func:`dumps` wrote (trusted input: the journal's own pipe, from the same interpreter).

    Raises:
        ValueError: bytes :func:`dumps` did not write (or a damaged MessagePack body).
    """
    head, body = data[:1], memoryview(data)[1:]
    if head == _PACKED:
        try:
            batch: Batch = _UNPACK.decode(body)
        except msgspec.DecodeError as exc:
            raise ValueError(f"damaged journal batch: {exc}") from exc
    elif head == _PICKLED:
        batch = pickle.loads(body)
    else:
        raise ValueError(f"not a journal batch (first byte {head!r})")
    return batch


_NOT_IN_EVENT: Final = frozenset({"run_id", "venue_session", "event_key"})


def _json_default(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    return repr(value)


_EVENT_JSON: Final = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=_json_default).encode


def _event(seq: int, topic: str, account: int, ts_ns: int, run_id: str | None, payload: str) -> rw.Row:  # noqa: PLR0917
    return {
        "seq": seq,
        "topic": topic,
        "account_id": int(account),
        "ts_ns": int(ts_ns or 0),
        "run_id": run_id,
        "payload": payload,
    }


def _row_json(row: rw.Row) -> str:
    return _EVENT_JSON({k: v for k, v in row.items() if k not in _NOT_IN_EVENT})


def rows_of(
    items: Iterable[Item],
    orders: Iterable[tuple[Any, ...]] = (),
    *,
    order_rows: bool = True,
    scope: Scope = NO_SCOPE,
    last_seq: int | None = None,
) -> list[tuple[str, rw.Row]]:
    """The ``(table, row)`` pairs of captured ``items`` and ``orders`` states (see the module docstring).

    Order events give an ``order_events`` row (plus a ``fills`` row for a fill, with the broker order id of the
    order's state in the same batch); each order state gives an ``orders`` row (an upsert that keeps the newest),
    unless ``order_rows`` is false (the states then only supply broker order ids). Every row of a node's record is
    stamped with the batch's ``scope`` (:data:`Scope`: the venue session of its account); ready-made rows (``K_ROWS``)
    are written as they are.

    With ``last_seq`` (the batch's last sequence number: the items are numbered ``last_seq - len(items) + 1`` ...
    ``last_seq`` in order), every item also gives its ``events`` row (:class:`propdesk.storage.models.EventRow`):
    its topic, account, time (UTC ns), the run and the canonical JSON of its record (an order event's ``payload``;
    the fields of the record's row otherwise).

    Raises:
        ValueError: an item of an unknown kind.
    """
    run_id, default_venue, per_account = scope
    venues = dict(per_account)
    venue = default_venue
    out: list[tuple[str, rw.Row]] = []
    add = out.append
    broker_ids: dict[tuple[int, str], int | None] = {}
    numbered = last_seq is not None
    if numbered:
        items = list(items)
    seq = 0 if last_seq is None else last_seq - len(items)  # type: ignore[arg-type]
    for state in orders:
        row = order_state_row(state, run_id)
        broker_ids[(row["account_id"], row["client_order_id"])] = row["broker_order_id"]
        if order_rows:
            add(("orders", row))
    for it in items:
        kind = it[0]
        if venues:
            venue = venues.get(int(it[1]), default_venue)
        if kind == K_FILL:
            event_row, fill_row = fill_rows(it, broker_ids.get((int(it[1]), str(it[2]))), run_id, venue)
            add(("order_events", event_row))
            add(("fills", fill_row))
            if numbered:
                seq += 1
                add(("events", _event(seq, topics.ORDER_FILLED, it[1], it[3], run_id, event_row["payload"])))
        elif kind == K_ORDER:
            row = order_event_rows(it, run_id)
            add(("order_events", row))
            if numbered:
                seq += 1
                topic = topics.order_event(row["kind"])
                add(("events", _event(seq, topic, it[1], row["ts_event_ns"], run_id, row["payload"])))
        elif kind in (K_POSITION, K_POSITION_CHANGE):
            row = position_rows(it if kind == K_POSITION else position_change_item(it), run_id, venue)
            add(("position_snapshots", row))
            if numbered:
                seq += 1
                topic = topics.position_event(row["kind"])
                add(("events", _event(seq, topic, it[1], row["ts_event_ns"], run_id, _row_json(row))))
        elif kind in (K_RISK, K_AUDIT):
            if kind == K_RISK:
                row = rw.risk_event_row(it[2], run_id=run_id, venue_session=venue)
            else:
                row = rw.audit_entry_row(it[2], run_id=run_id, venue_session=venue)
            add(("risk_events", row))
            if numbered:
                seq += 1
                own = getattr(it[2], "topic", None) if kind == K_RISK else None
                topic = own if isinstance(own, str) else topics.risk_event(row["kind"])
                add(("events", _event(seq, topic, it[1], row["ts_ns"], run_id, _row_json(row))))
        elif kind == K_REPORT:
            msg, ts_ns = it[2], it[3]
            row = rw.account_row(it[1], ts_ns) if msg is None else rw.account_report_row(msg)
            add(("accounts", row))
            if numbered:
                seq += 1
                topic = topics.ACCOUNT_SEEN if msg is None else topics.ACCOUNT_REPORT
                add(("events", _event(seq, topic, it[1], ts_ns, run_id, _row_json(row))))
        elif kind == K_SNAPSHOT:
            snap, (snap_kind, ref), ts_ns = it[2], it[3], it[4]
            snap_row = rw.account_snapshot_row(it[1], snap, ts_ns, snap_kind, ref, run_id=run_id, venue_session=venue)
            add(("account_snapshots", snap_row))
            eods = rw.eod_rows(it[1], snap.eod_balances, ts_ns)
            for row in eods:
                add(("eod_balances", row))
            if numbered:
                seq += 1
                payload = _row_json({**snap_row, "eod_balances": eods})
                add(("events", _event(seq, topics.ACCOUNT_SNAPSHOT, it[1], ts_ns, run_id, payload)))
        elif kind == K_EOD:
            row = rw.eod_rows(it[1], [it[2]], it[3])[0]
            add(("eod_balances", row))
            if numbered:
                seq += 1
                add(("events", _event(seq, topics.ACCOUNT_EOD, it[1], it[3], run_id, _row_json(row))))
        elif kind == K_ROWS:
            out.extend(it[2])
            if numbered:
                seq += 1
                pairs = it[2]
                if len(pairs) == 1 and pairs[0][0] == "command_results":  # the desk's command result
                    row = pairs[0][1]
                    event = _event(seq, topics.COMMAND_RESULTS, it[1], row["ts_ns"], run_id, _row_json(row))
                else:
                    event = _event(seq, topics.STRATEGY_ROWS, it[1], 0, run_id, _EVENT_JSON({"rows": pairs}))
                add(("events", event))
        else:
            raise ValueError(f"journal item of unknown kind {kind!r}")
    return out


def event_rows(items: list[Item], last_seq: int, scope: Scope = NO_SCOPE) -> list[rw.Row]:
    """The ``events`` rows of a batch's ``items`` (numbered up to ``last_seq``; see :func:`rows_of`): exactly the
    rows the writer stores, so an event published live equals the same event read back from the database."""
    return [row for table, row in rows_of(items, scope=scope, last_seq=last_seq) if table == "events"]
