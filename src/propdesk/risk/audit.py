"""The risk audit log: every pre-trade decision, every rule evaluation that matters and every enforcement step,
with the inputs that caused it.

An :class:`AuditEntry` holds: when (``ts_ns``, UTC ns), which account, the point (``pre``, ``fill``, ``quote``,
``clock``, ``enforce``, ``state``, ``lockout``, ``connection``, ``store``), the verdict (``action``, ``state``,
``reasons``), an enforcement ``step`` (``cancel_all``, ``close_position``, ``verify``, ``retry`` ...) and the
``inputs``: a JSON-ready snapshot of the account view (day net, equity, MLL floor, positions, worst-case exposure,
working orders, counters) plus whatever the caller adds (the order under check, the fill). Money is written as
exact decimal strings (``"-150.00"``), never floats. Nothing secret goes in: keys that look like credentials are
dropped by :func:`scrub` (risk-rules.md section 8: the API key never appears in logs).

Sinks (the :class:`AuditLog` protocol, one method ``record``): :class:`RingAuditLog` (the last N entries in
memory, for the API and tests), :class:`JsonLinesAuditLog` (one JSON object per line, appended),
:class:`BusAuditLog` (publishes :class:`~propdesk.risk.events.RiskDecisionLogged`) and :class:`MultiAuditLog`
(several at once). A failing sink never stops enforcement: callers use :func:`safe_record`.

Source: ``../shared/specs/risk-rules.md`` sections 7.2 ("logs allow/deny with rule ids") and 7.4 ("log every call
and result"); the journal (``storage/``) will keep the durable copy.
"""

from __future__ import annotations

import json
import logging
import operator
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from propdesk.model.orders import Order
from propdesk.model.price import Money, Price
from propdesk.model.records import AuditEntry

if TYPE_CHECKING:
    from propdesk.core.bus import MessageBus
    from propdesk.risk.rules.base import AccountView

__all__ = [
    "AuditLog",
    "BusAuditLog",
    "JsonLinesAuditLog",
    "MultiAuditLog",
    "RingAuditLog",
    "capture_view",
    "order_inputs",
    "render_view_inputs",
    "safe_record",
    "view_inputs",
    "worst_case_exposure",
]

log = logging.getLogger("propdesk.risk.audit")


@runtime_checkable
class AuditLog(Protocol):
    """Where audit entries go."""

    def record(self, entry: AuditEntry) -> None:
        """Append ``entry``. May raise on I/O failure (callers use :func:`safe_record`)."""
        ...


def safe_record(audit: AuditLog | None, entry: AuditEntry) -> None:
    """Record ``entry`` in ``audit``; a failing sink is logged (``propdesk.risk.audit``), never raised, so auditing
    can never stop an enforcement."""
    if audit is None:
        return
    try:
        audit.record(entry)
    except Exception:
        log.exception("risk audit log failed to record a %s entry for account %s", entry.point, entry.account)


class RingAuditLog:
    """The last ``capacity`` entries in memory (oldest dropped first).

    Raises:
        ValueError: ``capacity`` < 1.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"audit ring capacity must be >= 1, got {capacity}")
        self._ring: deque[AuditEntry] = deque(maxlen=capacity)

    def record(self, entry: AuditEntry) -> None:
        """Append ``entry``."""
        self._ring.append(entry)

    def entries(self, *, point: str | None = None, step: str | None = None) -> list[AuditEntry]:
        """Entries oldest first, only those of ``point`` and/or ``step`` when given."""
        return [e for e in self._ring if (point is None or e.point == point) and (step is None or e.step == step)]

    def __len__(self) -> int:
        return len(self._ring)


class JsonLinesAuditLog:
    """Appends each entry as one JSON line (:meth:`AuditEntry.to_dict`) to ``path``, flushed at once.

    Args:
        path: the file (created with its directory; appended to if it exists).
        fsync: also ``fsync`` after every entry (slower; off by default: the journal is the durable record).

    Raises:
        OSError: the file cannot be opened.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")

    def record(self, entry: AuditEntry) -> None:
        """Append ``entry`` as one line.

        Raises:
            ValueError: the log was closed. OSError: the write failed.
        """
        if self._fh is None:
            raise ValueError(f"audit log {self.path} is closed")
        self._fh.write(json.dumps(entry.to_dict(), separators=(",", ":"), default=_json_default) + "\n")
        self._fh.flush()
        if self._fsync:
            import os  # noqa: PLC0415 - only on this rarely used path

            os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file (further records raise)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @staticmethod
    def read(path: str | Path) -> list[dict[str, Any]]:
        """Every entry of a JSON-lines audit file, as dicts, oldest first.

        Raises:
            OSError: unreadable file. ValueError: a line that is not JSON (the message names the line).
        """
        out: list[dict[str, Any]] = []
        with Path(path).open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}, line {n}: not JSON ({exc})") from exc
        return out


class BusAuditLog:
    """Publishes every entry as :class:`~propdesk.risk.events.RiskDecisionLogged` on the bus (for the API push)."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    def record(self, entry: AuditEntry) -> None:
        """Publish ``entry``."""
        from propdesk.risk.events import RiskDecisionLogged  # noqa: PLC0415 - events imports this module's types

        event = RiskDecisionLogged(account_id=entry.account, ts_ns=entry.ts_ns, entry=entry)
        self._bus.publish(event.topic, event)


class MultiAuditLog:
    """Records every entry in each of ``logs``; one failing sink does not stop the others (it is logged)."""

    def __init__(self, logs: Iterable[AuditLog]) -> None:
        self.logs = list(logs)

    def record(self, entry: AuditEntry) -> None:
        """Record ``entry`` everywhere."""
        for sink in self.logs:
            safe_record(sink, entry)

    def entries(self, *, point: str | None = None, step: str | None = None) -> list[AuditEntry]:
        """The entries of the first of ``logs`` that keeps them in memory (a :class:`RingAuditLog`), oldest first,
        only those of ``point`` and/or ``step`` when given; empty when none does."""
        for sink in self.logs:
            entries = getattr(sink, "entries", None)
            if callable(entries):
                found: list[AuditEntry] = entries(point=point, step=step)
                return found
        return []


# ------------------------------------------------------------------------------------------------ inputs


def _json_default(value: object) -> object:
    if isinstance(value, Money):
        return str(value.as_decimal())
    if isinstance(value, Price):
        return str(value)
    return repr(value)


def _money(m: Money | None) -> str | None:
    return None if m is None else str(m.as_decimal())


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a view that cannot answer is itself an input worth recording
        return f"<error {type(exc).__name__}: {exc}>"


def worst_case_exposure(view: AccountView) -> float:
    """Worst-case mini-equivalent exposure of the account: ``sum over contracts of max(|p + B|, |p - S|) x weight``,
    with ``p`` the signed position and ``B`` / ``S`` the open buy / sell quantities of working orders that are not
    bracket children (risk-rules.md R5 and section 6, "Working orders" and "Bracket children")."""
    orders = [(o.symbol, o.side, o.qty - o.filled_qty, o.parent_id) for o in view.working_orders]
    return _exposure({p.symbol: p.signed_qty for p in view.positions}, orders, view.weight)


_VIEW_FIELDS: tuple[str, ...] = (
    "now_ns",
    "balance",
    "equity",
    "day_net",
    "day_realized_net",
    "unrealized",
    "mll_floor",
    "trades_today",
    "contracts_today",
)
_VIEW_GETTER = operator.attrgetter(*_VIEW_FIELDS)


def capture_view(view: AccountView) -> dict[str, Any]:
    """The raw values :func:`view_inputs` reports, read now and left unconverted (Money, positions and orders as
    they are: immutable values and a copy of the order list). Cheap enough for the enforcement path; render it
    later with :func:`render_view_inputs`. A property the view cannot answer is captured as ``"<error ...>"``."""
    raw: dict[str, Any]
    try:
        raw = dict(zip(_VIEW_FIELDS, _VIEW_GETTER(view), strict=True))  # one call in the usual case
    except Exception:
        raw = {}
        for name in _VIEW_FIELDS:
            try:
                raw[name] = getattr(view, name)
            except Exception as exc:  # a view that cannot answer is itself an input worth recording
                raw[name] = f"<error {type(exc).__name__}: {exc}>"
    try:
        raw["positions"] = tuple(view.positions)
    except Exception as exc:
        raw["positions"] = f"<error {type(exc).__name__}: {exc}>"
    try:
        raw["working_orders"] = tuple(
            (o.symbol, o.side, o.qty - o.filled_qty, o.parent_id) for o in view.working_orders
        )
    except Exception as exc:
        raw["working_orders"] = f"<error {type(exc).__name__}: {exc}>"
    return raw


def render_view_inputs(raw: dict[str, Any], view: AccountView) -> dict[str, Any]:
    """A :func:`capture_view` capture as JSON-ready audit inputs (see :func:`view_inputs`); ``view`` supplies the
    contract weights for the exposure."""
    out: dict[str, Any] = {}
    for name in _VIEW_FIELDS:
        v = raw[name]
        out[name] = _money(v) if isinstance(v, Money) else v
    positions = raw["positions"]
    orders = raw["working_orders"]
    if isinstance(positions, str):
        out["positions"] = positions
    else:
        out["positions"] = [[p.symbol, p.signed_qty, str(p.avg_price), _money(p.unrealized)] for p in positions]
    out["working_orders"] = orders if isinstance(orders, str) else len(orders)
    if isinstance(positions, str) or isinstance(orders, str):
        out["exposure"] = "<error: positions or orders unknown>"
    else:
        out["exposure"] = _safe(lambda: _exposure({p.symbol: p.signed_qty for p in positions}, orders, view.weight))
    return out


def _exposure(
    pos: Mapping[str, int], orders: Iterable[tuple[str, Any, int, Any]], weight: Callable[[str], float]
) -> float:
    buys: dict[str, int] = {}
    sells: dict[str, int] = {}
    for symbol, side, leaves, parent_id in orders:
        if parent_id is not None or leaves <= 0:
            continue
        book = buys if int(side) > 0 else sells
        book[symbol] = book.get(symbol, 0) + leaves
    total = 0.0
    for symbol in set(pos) | set(buys) | set(sells):
        p = pos.get(symbol, 0)
        worst = max(abs(p + buys.get(symbol, 0)), abs(p - sells.get(symbol, 0)))
        if worst:
            total += worst * weight(symbol)
    return total


def view_inputs(view: AccountView) -> dict[str, Any]:
    """A JSON-ready snapshot of ``view`` for an audit entry: money as decimal strings, positions as
    ``[symbol, signed_qty, avg_price, unrealized]``, ``working_orders`` as a count, ``exposure`` from
    :func:`worst_case_exposure`. A property the view cannot answer is recorded as ``"<error ...>"`` instead of
    raising."""
    return render_view_inputs(capture_view(view), view)


def order_inputs(order: Order) -> dict[str, Any]:
    """A JSON-ready description of ``order`` for an audit entry."""
    return {
        "client_order_id": str(order.client_order_id),
        "symbol": order.symbol,
        "side": order.side.name,
        "qty": order.qty,
        "filled_qty": order.filled_qty,
        "type": order.order_type.value,
        "limit_price": None if order.limit_price is None else str(order.limit_price),
        "stop_price": None if order.stop_price is None else str(order.stop_price),
        "tag": order.tag,
        "reduce_only": order.reduce_only,
        "parent_id": order.parent_id,
        "status": order.status.value,
    }
