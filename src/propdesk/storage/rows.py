"""Conversions between propdesk's records and journal rows (plain dicts keyed by column name).

Encoding (see :mod:`propdesk.storage.models`): prices as ``Price.raw`` (price x 10**9), money as cents, times as UTC
ns. JSON details (``payload``, ``extra``) are canonical (sorted keys, no spaces). Risk payloads carry prices and money
as exact decimal strings, enums by name, dates in ISO form, with credential-like keys removed
(:func:`propdesk.model.records.scrub`); order-event payloads (the hot path) carry ``Price.raw`` ints and cents. So the
same event always gives the same text and the same key: ``event_key`` (SHA-256 hex of kind and payload) for risk
events, ``order_event_key`` (a signed 64-bit BLAKE2b digest of kind and payload) for the hot ``order_events`` table:
a replayed event is recognized as a duplicate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date
from enum import Enum
from typing import TYPE_CHECKING, Any

from propdesk.model.enums import Side
from propdesk.model.events import OrderEvent, OrderFilled
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import OPEN, Fill, Order, OrderStatus, OrderType, TimeInForce
from propdesk.model.positions import PositionEvent, PositionSnapshot
from propdesk.model.price import Money, Price
from propdesk.model.records import AccountSnapshot, AuditEntry, Lockout, scrub

if TYPE_CHECKING:
    from propdesk.model.data import Bar
    from propdesk.model.reports import AccountReport

__all__ = [
    "Row",
    "account_report_row",
    "account_row",
    "account_snapshot_from_row",
    "account_snapshot_row",
    "audit_entry_row",
    "backtest_result_row",
    "bar_row",
    "canonical_json",
    "eod_rows",
    "event_key",
    "fill_from_row",
    "fill_row",
    "lockout_from_row",
    "lockout_row",
    "order_event_key",
    "order_event_payload",
    "order_event_row",
    "order_from_row",
    "order_row",
    "position_event_row",
    "position_snapshot_from_row",
    "risk_event_row",
    "strategy_run_row",
]

Row = dict[str, Any]
"""A row as a dict of column name to value."""


def _default(value: object) -> object:
    if isinstance(value, Price):
        return str(value)
    if isinstance(value, Money):
        return str(value.as_decimal())
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, AuditEntry):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def canonical_json(value: object) -> str:
    """``value`` as canonical JSON (sorted keys, compact; see the module docstring), secrets scrubbed."""
    plain = json.loads(json.dumps(value, default=_default, separators=(",", ":"), sort_keys=True))
    return json.dumps(scrub(plain), separators=(",", ":"), sort_keys=True)


def event_key(kind: str, payload: str) -> str:
    """SHA-256 hex of ``kind`` and the canonical ``payload``: the idempotency key of an event row."""
    return hashlib.sha256(f"{kind}|{payload}".encode()).hexdigest()


def order_event_key(kind: str, payload: str) -> int:
    """The idempotency key of an ``order_events`` row: the first 8 bytes of BLAKE2b over ``kind`` and the canonical
    ``payload``, as a signed 64-bit int (fits ``BIGINT``). Unique together with the account and client order id, so
    a collision would need two different events of the same order with the same 64-bit digest (chance ~2**-64 per
    pair); an 8-byte integer keeps the unique index small and cheap to maintain (issue 5)."""
    return int.from_bytes(hashlib.blake2b(f"{kind}|{payload}".encode(), digest_size=8).digest(), "big", signed=True)


def _raw(p: Price | None) -> int | None:
    return None if p is None else p.raw


# ------------------------------------------------------------------------------------------------ orders


def order_row(order: Order, *, run_id: str | None = None) -> Row:
    """The ``orders`` row of ``order``'s current state (take it when the event is seen: orders are mutable);
    ``run_id``: the strategy run journaling it."""
    return {
        "account_id": int(order.account_id),
        "client_order_id": str(order.client_order_id),
        "broker_order_id": None if order.broker_order_id is None else int(order.broker_order_id),
        "symbol": order.symbol,
        "side": int(order.side),
        "qty": order.qty,
        "order_type": order.order_type.value,
        "limit_price_raw": _raw(order.limit_price),
        "stop_price_raw": _raw(order.stop_price),
        "trail_ticks": order.trail_ticks,
        "tif": order.tif.value,
        "tag": order.tag,
        "reduce_only": order.reduce_only,
        "parent_id": None if order.parent_id is None else str(order.parent_id),
        "linked_ids": json.dumps([str(i) for i in order.linked_ids]),
        "status": order.status.value,
        "is_open": order.status in OPEN,
        "filled_qty": order.filled_qty,
        "fees_cents": order.fees.cents,
        "fill_notional_raw": order._fill_notional_raw,
        "reason": order.reason,
        "ts_init_ns": order.ts_init_ns,
        "ts_last_ns": order.ts_last_ns,
        "run_id": run_id,
    }


def order_from_row(row: Any, fills: list[Fill] | None = None) -> Order:
    """Rebuild an :class:`Order` (status, filled quantity, fees, fills) from an ``orders`` row (mapping or ORM row).

    ``fills`` are the order's journaled fills (oldest first); without them ``order.fills`` is empty but
    ``filled_qty``, ``fees`` and the average fill price are restored from the row.
    """
    r = _mapping(row)
    order = Order(
        client_order_id=ClientOrderId(r["client_order_id"]),
        account_id=AccountId(r["account_id"]),
        symbol=r["symbol"],
        side=Side(r["side"]),
        qty=r["qty"],
        order_type=OrderType(r["order_type"]),
        limit_price=None if r["limit_price_raw"] is None else Price(r["limit_price_raw"]),
        stop_price=None if r["stop_price_raw"] is None else Price(r["stop_price_raw"]),
        trail_ticks=r["trail_ticks"],
        tif=TimeInForce(r["tif"]),
        tag=r["tag"],
        reduce_only=bool(r["reduce_only"]),
        parent_id=None if r["parent_id"] is None else ClientOrderId(r["parent_id"]),
        linked_ids=tuple(ClientOrderId(i) for i in json.loads(r["linked_ids"] or "[]")),
        ts_init_ns=r["ts_init_ns"],
    )
    order.status = OrderStatus(r["status"])
    order.broker_order_id = None if r["broker_order_id"] is None else BrokerOrderId(r["broker_order_id"])
    order.filled_qty = r["filled_qty"]
    order.fees = Money(r["fees_cents"])
    order._fill_notional_raw = r["fill_notional_raw"]
    order.reason = r["reason"]
    order.ts_last_ns = r["ts_last_ns"]
    order.fills = list(fills or [])
    return order


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(v: object) -> object:
    if v is None or isinstance(v, (str, int, float)):
        return v  # bool and IntEnum (Side) are ints
    if isinstance(v, Price):
        return v.raw
    if isinstance(v, Money):
        return v.cents
    if isinstance(v, Enum):
        return v.name
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return repr(v)


def order_event_payload(event: OrderEvent) -> str:
    """The canonical JSON of an order event's fields: prices as ``Price.raw`` ints (x 10**9), money as cents, enums
    by name (``side`` as +1/-1). Order events carry no secrets, so this fast path skips scrubbing."""
    cls = type(event)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(event))
    return json.dumps({n: _plain(getattr(event, n)) for n in names}, separators=(",", ":"), sort_keys=True)


def order_event_row(event: OrderEvent, *, run_id: str | None = None) -> Row:
    """The ``order_events`` row of ``event`` (``kind`` is the topic's last segment: ``filled``, ``accepted`` ...;
    ``payload`` from :func:`order_event_payload`; ``run_id``: the strategy run journaling it)."""
    kind = event.topic.rsplit(".", 1)[-1]
    payload = order_event_payload(event)
    return {
        "account_id": int(event.account_id),
        "client_order_id": str(event.client_order_id),
        "kind": kind,
        "ts_event_ns": event.ts_event_ns,
        "reconciled": event.reconciled,
        "payload": payload,
        "event_key": order_event_key(kind, payload),
        "run_id": run_id,
    }


def fill_row(
    event: OrderFilled, broker_order_id: int | None = None, *, run_id: str | None = None, venue_session: str = ""
) -> Row:
    """The ``fills`` row of one execution; ``run_id``: the strategy run journaling it; ``venue_session``: the scope
    its trade id is unique in besides the account (the run id for a simulated exchange, empty for ProjectX; see
    :mod:`propdesk.storage.models`)."""
    return {
        "account_id": int(event.account_id),
        "trade_id": event.trade_id,
        "client_order_id": str(event.client_order_id),
        "broker_order_id": broker_order_id,
        "symbol": event.symbol,
        "side": int(event.side),
        "qty": event.qty,
        "price_raw": event.price.raw,
        "fee_cents": event.fee.cents,
        "tag": event.tag,
        "ts_event_ns": event.ts_event_ns,
        "reconciled": event.reconciled,
        "run_id": run_id,
        "venue_session": venue_session,
    }


def fill_from_row(row: Any) -> OrderFilled:
    """Rebuild the :class:`OrderFilled` of a ``fills`` row."""
    r = _mapping(row)
    return OrderFilled(
        client_order_id=ClientOrderId(r["client_order_id"]),
        account_id=AccountId(r["account_id"]),
        ts_event_ns=r["ts_event_ns"],
        reconciled=bool(r["reconciled"]),
        symbol=r["symbol"],
        side=Side(r["side"]),
        qty=r["qty"],
        price=Price(r["price_raw"]),
        fee=Money(r["fee_cents"]),
        trade_id=r["trade_id"],
        tag=r["tag"],
    )


# ------------------------------------------------------------------------------------------------ positions


def position_event_row(event: PositionEvent, *, run_id: str | None = None, venue_session: str = "") -> Row:
    """The ``position_snapshots`` row of a position event (``run_id``, ``venue_session``: as :func:`fill_row`)."""
    p = event.position
    return {
        "account_id": int(p.account_id),
        "symbol": p.symbol,
        "position_tag": p.tag or "",
        "kind": event.topic.rsplit(".", 1)[-1],
        "trade_id": event.trade_id,
        "tag": event.tag,
        "signed_qty": p.signed_qty,
        "avg_price_raw": _raw(p.avg_price),
        "realized_pnl_cents": p.realized_pnl.cents,
        "fees_cents": p.fees.cents,
        "unrealized_pnl_cents": None if p.unrealized_pnl is None else p.unrealized_pnl.cents,
        "opened_ts_ns": p.opened_ts_ns,
        "last_ts_ns": p.last_ts_ns,
        "fill_count": p.fill_count,
        "fill_signed_qty": event.fill_signed_qty,
        "fill_price_raw": event.fill_price.raw,
        "fill_fee_cents": event.fill_fee.cents,
        "fill_realized_pnl_cents": event.fill_realized_pnl.cents,
        "ts_event_ns": event.ts_event_ns,
        "reconciled": event.reconciled,
        "run_id": run_id,
        "venue_session": venue_session,
    }


def position_snapshot_from_row(row: Any) -> PositionSnapshot:
    """Rebuild the :class:`PositionSnapshot` of a ``position_snapshots`` row."""
    r = _mapping(row)
    return PositionSnapshot(
        symbol=r["symbol"],
        account_id=AccountId(r["account_id"]),
        tag=r["position_tag"] or None,
        signed_qty=r["signed_qty"],
        avg_price=None if r["avg_price_raw"] is None else Price(r["avg_price_raw"]),
        realized_pnl=Money(r["realized_pnl_cents"]),
        fees=Money(r["fees_cents"]),
        unrealized_pnl=None if r["unrealized_pnl_cents"] is None else Money(r["unrealized_pnl_cents"]),
        opened_ts_ns=r["opened_ts_ns"],
        last_ts_ns=r["last_ts_ns"],
        fill_count=r["fill_count"],
    )


# ------------------------------------------------------------------------------------------------ runs


def strategy_run_row(
    *,
    run_id: str,
    kind: str,
    strategy: str,
    symbol: str,
    started_ns: int,
    timeframe: str = "",
    account_id: int | None = None,
    params: Any = None,
    status: str = "running",
    ended_ns: int | None = None,
    run_key: str | None = None,
    host: str = "",
    pid: int | None = None,
    pid_start: int | None = None,
    heartbeat_ns: int | None = None,
    attempts: int = 1,
) -> Row:
    """The ``strategy_runs`` row of one run, every column in table order (``kind``: ``backtest``, ``replay``,
    ``live``; ``status``, owner, heartbeat, ``run_key`` and ``attempts``: :mod:`propdesk.storage.runs`; ``params``
    as canonical JSON; times UTC ns)."""
    return {
        "id": run_id,
        "kind": kind,
        "strategy": strategy,
        "symbol": symbol,
        "timeframe": timeframe,
        "account_id": account_id,
        "params": canonical_json(dict(params or {})),
        "status": status,
        "started_ns": started_ns,
        "ended_ns": ended_ns,
        "run_key": run_key,
        "host": host,
        "pid": pid,
        "pid_start": pid_start,
        "heartbeat_ns": heartbeat_ns,
        "attempts": attempts,
    }


def backtest_result_row(run_id: str, report: Any) -> Row:
    """The ``backtest_results`` row of a backtest's report (``BacktestResult.to_json_dict()``: money as USD
    strings, stored as cents; the whole report as canonical JSON)."""

    def cents(key: str) -> int:
        value = report.get(key)
        return 0 if value is None else Money.of(str(value)).cents

    def opt_float(key: str) -> float | None:
        value = report.get(key)
        return None if value is None else float(value)

    return {
        "run_id": run_id,
        "bars": int(report.get("bars", 0)),
        "first_bar_ns": report.get("first_bar_ns"),
        "last_bar_ns": report.get("last_bar_ns"),
        "fills": int(report.get("fills", 0)),
        "trades": int(report.get("trades", 0)),
        "net_pnl_cents": cents("net_pnl_usd"),
        "gross_pnl_cents": cents("gross_pnl_usd"),
        "fees_cents": cents("fees_usd"),
        "max_drawdown_cents": cents("max_drawdown_usd"),
        "win_rate": opt_float("win_rate"),
        "profit_factor": opt_float("profit_factor"),
        "sharpe": opt_float("sharpe"),
        "report": canonical_json(dict(report)),
    }


# ------------------------------------------------------------------------------------------------ accounts


def account_row(account_id: int, ts_ns: int) -> Row:
    """A minimal ``accounts`` row (first sight of an account id)."""
    return {
        "account_id": int(account_id),
        "name": "",
        "broker": "",
        "simulated": None,
        "can_trade": None,
        "balance_cents": None,
        "first_seen_ns": ts_ns,
        "updated_ns": ts_ns,
    }


def account_report_row(report: AccountReport, broker: str = "") -> Row:
    """The ``accounts`` row of a broker's account report."""
    return {
        "account_id": int(report.account_id),
        "name": report.name,
        "broker": broker,
        "simulated": report.simulated,
        "can_trade": report.can_trade,
        "balance_cents": report.balance.cents,
        "first_seen_ns": report.ts_ns,
        "updated_ns": report.ts_ns,
    }


def account_snapshot_row(
    account_id: int,
    snap: AccountSnapshot,
    ts_ns: int,
    kind: str,
    ref: str = "",
    *,
    run_id: str | None = None,
    venue_session: str = "",
) -> Row:
    """The ``account_snapshots`` row of a risk-engine :class:`~propdesk.model.records.AccountSnapshot` (``run_id``,
    ``venue_session``: as :func:`fill_row`; ``ref`` of a ``fill`` snapshot is a trade id of that venue session)."""
    extra = {
        "eod_balances": [[d.isoformat(), m.cents] for d, m in snap.eod_balances],
        "daily_net_history": [[d.isoformat(), m.cents] for d, m in snap.daily_net_history],
        "open_round_trips": [[s, m.cents] for s, m in snap.open_round_trips],
    }
    return {
        "account_id": int(account_id),
        "kind": kind,
        "ref": ref,
        "ts_ns": ts_ns,
        "trading_date": snap.trading_date,
        "balance_cents": snap.balance.cents,
        "sod_balance_cents": snap.sod_balance.cents,
        "day_realized_gross_cents": snap.day_realized_gross.cents,
        "day_fees_cents": snap.day_fees.cents,
        "day_peak_realized_cents": snap.day_peak_realized.cents,
        "day_peak_equity_cents": snap.day_peak_equity.cents,
        "mll_peak_cents": None if snap.mll_peak is None else snap.mll_peak.cents,
        "trades_today": snap.trades_today,
        "trades_week": snap.trades_week,
        "contracts_today": snap.contracts_today,
        "week_start_ns": snap.week_start_ns,
        "consecutive_losses": snap.consecutive_losses,
        "last_loss_ts_ns": snap.last_loss_ts_ns,
        "extra": json.dumps(extra, separators=(",", ":"), sort_keys=True),
        "run_id": run_id,
        "venue_session": venue_session,
    }


def account_snapshot_from_row(row: Any) -> AccountSnapshot:
    """Rebuild the :class:`~propdesk.model.records.AccountSnapshot` of an ``account_snapshots`` row."""
    r = _mapping(row)
    extra = json.loads(r["extra"] or "{}")
    td = r["trading_date"]
    return AccountSnapshot(
        trading_date=td if isinstance(td, date) else date.fromisoformat(str(td)),
        balance=Money(r["balance_cents"]),
        sod_balance=Money(r["sod_balance_cents"]),
        day_realized_gross=Money(r["day_realized_gross_cents"]),
        day_fees=Money(r["day_fees_cents"]),
        day_peak_realized=Money(r["day_peak_realized_cents"]),
        day_peak_equity=Money(r["day_peak_equity_cents"]),
        mll_peak=None if r["mll_peak_cents"] is None else Money(r["mll_peak_cents"]),
        eod_balances=tuple((date.fromisoformat(d), Money(c)) for d, c in extra.get("eod_balances", [])),
        daily_net_history=tuple((date.fromisoformat(d), Money(c)) for d, c in extra.get("daily_net_history", [])),
        trades_today=r["trades_today"],
        trades_week=r["trades_week"],
        contracts_today=r["contracts_today"],
        week_start_ns=r["week_start_ns"],
        consecutive_losses=r["consecutive_losses"],
        last_loss_ts_ns=r["last_loss_ts_ns"],
        open_round_trips=tuple((s, Money(c)) for s, c in extra.get("open_round_trips", [])),
    )


def eod_rows(account_id: int, balances: Any, ts_ns: int) -> list[Row]:
    """``eod_balances`` rows of ``(trading date, balance Money)`` pairs."""
    return [
        {"account_id": int(account_id), "trading_date": d, "balance_cents": m.cents, "ts_ns": ts_ns}
        for d, m in balances
    ]


# ------------------------------------------------------------------------------------------------ risk


def _risk_fields(event: object) -> dict[str, str]:
    out = {"point": "", "action": "", "state": "", "step": "", "rule_id": "", "reasons": ""}
    decision = getattr(event, "decision", None)
    if decision is not None:
        out["action"] = decision.action.name
        out["rule_id"] = decision.rule_id
        out["reasons"] = decision.reason
    point = getattr(event, "point", None)
    if isinstance(point, Enum):
        out["point"] = str(point.value)
    state = getattr(event, "state", None)
    if isinstance(state, Enum):
        out["state"] = state.name
    new = getattr(event, "new", None)
    if isinstance(new, Enum):
        out["state"] = new.name
        old = getattr(event, "old", None)
        out["action"] = f"{old.name if isinstance(old, Enum) else old}->{new.name}"
    reasons = getattr(event, "reasons", None)
    if isinstance(reasons, tuple):
        out["reasons"] = "; ".join(str(r) for r in reasons)
    lockout = getattr(event, "lockout", None)
    if isinstance(lockout, Lockout):
        out["rule_id"] = lockout.rule_id
        out["reasons"] = lockout.reason
    reason = getattr(event, "reason", None)
    if isinstance(reason, str) and not out["reasons"]:
        out["reasons"] = reason
    return out


def audit_entry_row(entry: AuditEntry, *, run_id: str | None = None, venue_session: str = "") -> Row:
    """The ``risk_events`` row (kind ``decision_logged``) of an audit entry (inputs scrubbed of secrets; ``run_id``,
    ``venue_session``: as :func:`fill_row`)."""
    payload = canonical_json(entry.to_dict())
    return {
        "account_id": int(entry.account),
        "ts_ns": entry.ts_ns,
        "kind": "decision_logged",
        "point": entry.point,
        "action": entry.action,
        "state": entry.state,
        "step": entry.step,
        "rule_id": "",
        "reasons": "; ".join(entry.reasons),
        "payload": payload,
        "event_key": event_key("decision_logged", payload),
        "run_id": run_id,
        "venue_session": venue_session,
    }


def risk_event_row(event: Any, *, run_id: str | None = None, venue_session: str = "") -> Row:
    """The ``risk_events`` row of a :class:`propdesk.risk.events.RiskEvent` (an audit entry for
    ``RiskDecisionLogged``, so the same entry recorded directly or via the bus is one row; ``run_id``,
    ``venue_session``: as :func:`fill_row`)."""
    entry = getattr(event, "entry", None)
    if isinstance(entry, AuditEntry):
        return audit_entry_row(entry, run_id=run_id, venue_session=venue_session)
    kind = str(event.topic).rsplit(".", 1)[-1]
    payload = canonical_json(event)
    row: Row = {"account_id": int(event.account_id), "ts_ns": int(event.ts_ns), "kind": kind}
    row.update(_risk_fields(event))
    row["payload"] = payload
    row["event_key"] = event_key(kind, payload)
    row["run_id"] = run_id
    row["venue_session"] = venue_session
    return row


# ------------------------------------------------------------------------------------------------ lockouts, bars


def lockout_row(lockout: Lockout) -> Row:
    """The ``lockouts`` row of a lockout."""
    return {
        "account_id": int(lockout.account),
        "rule_id": lockout.rule_id,
        "reason": lockout.reason,
        "set_at_ns": lockout.set_at_ns,
        "expires_at_ns": lockout.expires_at_ns,
        "firm": lockout.firm,
    }


def lockout_from_row(row: Any) -> Lockout:
    """Rebuild the :class:`Lockout` of a ``lockouts`` row."""
    r = _mapping(row)
    return Lockout(
        account=AccountId(r["account_id"]),
        rule_id=r["rule_id"],
        reason=r["reason"],
        set_at_ns=r["set_at_ns"],
        expires_at_ns=r["expires_at_ns"],
        firm=bool(r["firm"]),
    )


def bar_row(bar: Bar) -> Row:
    """The ``bars`` row of a bar (prices to fixed point: a float price is rounded to 9 decimals, exact on ticks)."""
    return {
        "symbol": bar.symbol,
        "timeframe": str(bar.timeframe),
        "ts_open_ns": bar.ts_open_ns,
        "ts_close_ns": bar.ts_close_ns,
        "open_raw": Price.of(bar.open).raw,
        "high_raw": Price.of(bar.high).raw,
        "low_raw": Price.of(bar.low).raw,
        "close_raw": Price.of(bar.close).raw,
        "volume": int(bar.volume),
    }


def _mapping(row: Any) -> Any:
    """A row as something indexable by column name (a ``Row``'s ``_mapping``, or the mapping itself)."""
    return getattr(row, "_mapping", row)
