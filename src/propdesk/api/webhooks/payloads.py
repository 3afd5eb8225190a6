"""The alert formats a hook accepts, parsed into one :class:`Alert` (ticker not yet resolved to a contract).

Formats, told apart by their keys (:func:`parse_alert`):

* **propdesk** (``"propdesk": 1``): ``symbol``, ``action`` (buy/sell/exit/cancel), ``qty``, ``target_position``,
  ``order_type`` (market/limit), ``limit_price``, ``price``, ``stop_loss_ticks``, ``take_profit_ticks``,
  ``sent_at`` (ISO-8601 or UTC ns), ``id`` (the dedupe key), ``tag`` (1-32 of ``A-Z a-z 0-9 _ . -``, appended to
  the hook's tag), ``passphrase``. Unknown keys are refused.
* **TradersPost-style** (``ticker`` + ``action``; https://docs.traderspost.io/docs/core-concepts/webhooks):
  ``action`` buy/sell/exit/cancel/add, ``sentiment`` bullish/long/bearish/short/flat (``flat`` means a target of
  0), ``quantity``, ``price``/``signalPrice`` (the alert's price), ``orderType`` market/limit with ``limitPrice``,
  ``stopLoss.stopPrice`` and ``takeProfit.limitPrice`` (absolute prices), ``time`` (ISO-8601, TradingView's
  ``{{timenow}}``), plus propdesk's ``passphrase``, ``target_position`` and ``id``. Other keys are ignored, as
  TradersPost does.
* **PickMyTrade-style** (``symbol`` + ``data``; https://docs.pickmytrade.io): ``data`` buy/sell/close, ``quantity``,
  ``price``, ``date`` (ISO-8601), ``sl``/``tp`` (stop and take-profit prices, ``0`` none), ``token`` (taken as the
  passphrase), plus ``target_position`` and ``id``. Other keys are ignored.

Refused rather than ignored (``invalid``), because a trader relying on them would trade without the protection
they asked for: percent or dollar stops and targets, trailing stops, ``risk_percentage`` sizing, stop orders.
Numbers may arrive as JSON numbers or strings (TradingView placeholders such as ``{{close}}`` are text); a
quantity must be a whole number of contracts, 1 to :data:`MAX_QTY`; prices have at most 9 decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from propdesk.api.webhooks.signal import Judgement, Outcome, SignalAction, SignalRejectedError
from propdesk.model.orders import OrderType

__all__ = ["MAX_QTY", "Alert", "parse_alert"]

MAX_QTY: Final = 1000
"""The most contracts one alert may ask for (quantity or target position)."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _lower(v: object) -> object:
    return v.strip().lower() if isinstance(v, str) else v


def _lower_or_none(v: object) -> object:
    return _blank_none(_lower(v))


def _blank_none(v: object) -> object:
    return None if isinstance(v, str) and not v.strip() else v


_Num = Annotated[
    Decimal,
    BeforeValidator(_blank_none),
    Field(allow_inf_nan=False, max_digits=28, decimal_places=9),
]
_Qty = Annotated[Decimal, BeforeValidator(_blank_none), Field(allow_inf_nan=False, ge=0, le=MAX_QTY, max_digits=28)]
_Target = Annotated[int, Field(ge=-MAX_QTY, le=MAX_QTY)]
_Ticks = Annotated[int, Field(ge=1, le=100_000)]
_Text = Annotated[str, Field(max_length=128)]


class _PropdeskAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    propdesk: Literal[1]
    passphrase: str | None = Field(default=None, max_length=256)
    id: _Text | None = None
    symbol: Annotated[str, Field(min_length=1, max_length=64)]
    action: Annotated[Literal["buy", "sell", "exit", "cancel"], BeforeValidator(_lower)]
    qty: _Qty | None = None
    target_position: _Target | None = None
    order_type: Annotated[Literal["market", "limit"], BeforeValidator(_lower)] = "market"
    limit_price: _Num | None = None
    price: _Num | None = None
    stop_loss_ticks: _Ticks | None = None
    take_profit_ticks: _Ticks | None = None
    sent_at: str | int | None = None
    tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] | None = None


class _TpStop(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str | None = None
    stopPrice: _Num | None = None  # noqa: N815 - the sender's key
    limitPrice: _Num | None = None  # noqa: N815
    amount: _Num | None = None
    percent: _Num | None = None
    trailAmount: _Num | None = None  # noqa: N815
    trailPercent: _Num | None = None  # noqa: N815


class _TradersPostAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ticker: Annotated[str, Field(min_length=1, max_length=64)]
    action: Annotated[Literal["buy", "sell", "exit", "cancel", "add"], BeforeValidator(_lower)]
    sentiment: Annotated[
        Literal["bullish", "long", "bearish", "short", "flat"] | None,
        BeforeValidator(_lower_or_none),
    ] = None
    quantity: _Qty | None = None
    price: _Num | None = None
    signalPrice: _Num | None = None  # noqa: N815
    orderType: Annotated[str, BeforeValidator(_lower)] = "market"  # noqa: N815
    limitPrice: _Num | None = None  # noqa: N815
    stopLoss: _TpStop | None = None  # noqa: N815
    takeProfit: _TpStop | None = None  # noqa: N815
    time: str | None = None
    passphrase: str | None = Field(default=None, max_length=256)
    target_position: _Target | None = None
    id: _Text | None = None


class _PickMyTradeAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    symbol: Annotated[str, Field(min_length=1, max_length=64)]
    data: Annotated[Literal["buy", "sell", "close"], BeforeValidator(_lower)]
    quantity: _Qty | None = None
    price: _Num | None = None
    date: str | None = None
    token: str | None = Field(default=None, max_length=256)
    passphrase: str | None = Field(default=None, max_length=256)
    sl: _Num | None = None
    tp: _Num | None = None
    order_type: Annotated[str, BeforeValidator(_lower)] = "mkt"
    risk_percentage: _Num | None = None
    dollar_sl: _Num | None = None
    dollar_tp: _Num | None = None
    percentage_sl: _Num | None = None
    percentage_tp: _Num | None = None
    trail: _Num | None = None
    target_position: _Target | None = None
    id: _Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert, format-neutral, ticker not yet resolved (:mod:`propdesk.api.webhooks.symbols` does that).

    Attributes:
        source: ``propdesk``, ``traderspost`` or ``pickmytrade``. ticker: as sent.
        action / qty / target_position / order_type: as :class:`~propdesk.api.webhooks.signal.Signal`.
        limit_price / price: points (Decimal, not yet checked against a tick).
        stop_loss_ticks / take_profit_ticks: a bracket in ticks; stop_loss_price / take_profit_price: in prices
            (turned into ticks from ``price`` once the contract is known).
        sent_at_ns: UTC ns, or ``None``. signal_id: the sender's id (the dedupe key), or ``None``.
        passphrase: what the body carried (``None``: none), never printed. tag: the sender's tag, or ``None``.
    """

    source: str
    ticker: str
    action: SignalAction
    qty: int | None = None
    target_position: int | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    price: Decimal | None = None
    stop_loss_ticks: int | None = None
    take_profit_ticks: int | None = None
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    sent_at_ns: int | None = None
    signal_id: str | None = None
    passphrase: str | None = field(default=None, repr=False)
    tag: str | None = None


def _invalid(reason: str) -> SignalRejectedError:
    return SignalRejectedError(Judgement(Outcome.INVALID, reason))


def _whole(q: Decimal | None, what: str) -> int | None:
    if q is None or q == 0:
        return None
    if q != q.to_integral_value():
        raise _invalid(f"{what} {q} is not a whole number of contracts")
    return int(q)


def _time_ns(raw: str | int | None, what: str) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, int):
        if raw < 0:
            raise _invalid(f"{what} {raw} is not a UTC ns time")
        return raw
    try:
        dt = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise _invalid(f"{what} {raw[:40]!r} is not an ISO-8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def _nonzero(v: Decimal | None) -> bool:
    return v is not None and v != 0


def _from_propdesk(m: _PropdeskAlert) -> Alert:
    if m.order_type == "limit" and m.limit_price is None:
        raise _invalid("order_type limit needs limit_price")
    return Alert(
        source="propdesk",
        ticker=m.symbol,
        action=SignalAction(m.action),
        qty=_whole(m.qty, "qty"),
        target_position=m.target_position,
        order_type=OrderType.LIMIT if m.order_type == "limit" else OrderType.MARKET,
        limit_price=m.limit_price,
        price=m.price,
        stop_loss_ticks=m.stop_loss_ticks,
        take_profit_ticks=m.take_profit_ticks,
        sent_at_ns=_time_ns(m.sent_at, "sent_at"),
        signal_id=m.id,
        passphrase=m.passphrase,
        tag=m.tag,
    )


def _from_traderspost(m: _TradersPostAlert) -> Alert:
    action = m.action
    if action == "add":
        if m.sentiment in ("bullish", "long"):
            action = "buy"
        elif m.sentiment in ("bearish", "short"):
            action = "sell"
        else:
            raise _invalid("action add needs sentiment long/bullish or short/bearish")
    target = m.target_position
    if target is None and m.sentiment == "flat" and action in ("buy", "sell"):
        target = 0
    for part, name in ((m.stopLoss, "stopLoss"), (m.takeProfit, "takeProfit")):
        if part is not None and any(
            _nonzero(v) for v in (part.amount, part.percent, part.trailAmount, part.trailPercent)
        ):
            raise _invalid(f"{name} as an amount, percent or trail is not supported: give its price")
        if part is not None and part.type not in (None, "", "stop", "limit"):
            raise _invalid(f"{name} type {part.type[:20]!r} is not supported (stop or limit)")
    if m.orderType not in ("market", "limit"):
        raise _invalid(f"orderType {m.orderType[:20]!r} is not supported (market or limit)")
    limit = m.limitPrice if m.limitPrice is not None else (m.price if m.orderType == "limit" else None)
    if m.orderType == "limit" and limit is None:
        raise _invalid("orderType limit needs limitPrice or price")
    return Alert(
        source="traderspost",
        ticker=m.ticker,
        action=SignalAction(action),
        qty=_whole(m.quantity, "quantity"),
        target_position=target,
        order_type=OrderType.LIMIT if m.orderType == "limit" else OrderType.MARKET,
        limit_price=limit,
        price=m.signalPrice if m.signalPrice is not None else m.price,
        stop_loss_price=m.stopLoss.stopPrice if m.stopLoss else None,
        take_profit_price=m.takeProfit.limitPrice if m.takeProfit else None,
        sent_at_ns=_time_ns(m.time, "time"),
        signal_id=m.id,
        passphrase=m.passphrase,
    )


def _from_pickmytrade(m: _PickMyTradeAlert) -> Alert:
    refused = {
        "risk_percentage": m.risk_percentage,
        "dollar_sl": m.dollar_sl,
        "dollar_tp": m.dollar_tp,
        "percentage_sl": m.percentage_sl,
        "percentage_tp": m.percentage_tp,
        "trail": m.trail,
    }
    used = [k for k, v in refused.items() if _nonzero(v)]
    if used:
        raise _invalid(f"{', '.join(used)} is not supported: give quantity, sl and tp as prices")
    if m.order_type not in ("mkt", "market"):
        raise _invalid(f"order_type {m.order_type[:20]!r} is not supported (MKT)")
    return Alert(
        source="pickmytrade",
        ticker=m.symbol,
        action=SignalAction.EXIT if m.data == "close" else SignalAction(m.data),
        qty=_whole(m.quantity, "quantity"),
        target_position=m.target_position,
        price=m.price,
        stop_loss_price=m.sl if _nonzero(m.sl) else None,
        take_profit_price=m.tp if _nonzero(m.tp) else None,
        sent_at_ns=_time_ns(m.date, "date"),
        signal_id=m.id,
        passphrase=m.passphrase if m.passphrase is not None else m.token,
    )


def _errors_text(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(parts)


def parse_alert(body: Mapping[str, Any]) -> Alert:
    """The alert in ``body`` (a decoded JSON object), in whichever format its keys name (module docstring).

    Raises:
        SignalRejectedError: ``invalid``: not a JSON object, no known format, a bad field (named, its value never
            echoed), or a refused feature.
    """
    if not isinstance(body, Mapping):
        raise _invalid("the alert body must be a JSON object")
    try:
        if "propdesk" in body:
            return _from_propdesk(_PropdeskAlert.model_validate(body))
        if "ticker" in body:
            return _from_traderspost(_TradersPostAlert.model_validate(body))
        if "symbol" in body and "data" in body:
            return _from_pickmytrade(_PickMyTradeAlert.model_validate(body))
    except ValidationError as exc:
        raise _invalid(f"the alert is malformed: {_errors_text(exc)}") from None
    raise _invalid('unknown alert format: expected "propdesk": 1, a "ticker" (TradersPost) or "symbol" and "data"')
