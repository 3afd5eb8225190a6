"""Typed models of every ProjectX Gateway request and response shape, tolerant of both doc vintages.

Source: ``../shared/specs/projectx-gateway-api.md`` sections 3.1-3.6 (REST) and 5.4 (hub payloads). Rules:

* keys are camelCase on the wire (aliases); unknown keys are ignored (SW extras, later additions);
* fields only the newer vintage has (``Account.simulated``, ``Contract.symbolId``, Order ``symbolId``/``fillVolume``/
  ``filledPrice``/``customTag`` and the SW extras) are optional; payload lists that come back ``null`` are empty;
* ``Contract/searchById`` answers with ``contract`` (newer) or ``contracts`` (older): :attr:`ContractByIdResponse.item`
  takes ``contract``, else ``contracts[0]``;
* prices are :class:`~decimal.Decimal` (a JSON float is read through its shortest repr, which is exact for prices on
  a tick); timestamps are parsed to UTC nanoseconds (:func:`parse_ts_ns`: ``Z`` or any offset, any number of
  fractional digits, naive = UTC).

Requests are models too; :meth:`WireModel.wire` gives the JSON body (camelCase, Decimal as JSON number).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

_NS: Final[int] = 1_000_000_000
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_TS_RE: Final[re.Pattern[str]] = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_ts_ns(value: object) -> int:
    """An ISO-8601 timestamp (``2025-07-18T21:00:01.268009+00:00``, ``...Z``, any offset, any number of fractional
    digits; naive means UTC) as UTC nanoseconds. An int is taken as UTC ns already.

    Raises:
        ValueError: not a timestamp.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (dt - _EPOCH) // timedelta(microseconds=1) * 1000
    if not isinstance(value, str):
        raise ValueError(f"timestamp {value!r} is not a string")
    m = _TS_RE.match(value.strip())
    if m is None:
        raise ValueError(f"timestamp {value!r} is not ISO-8601")
    y, mo, d, h, mi, s, frac, off = m.groups()
    base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=UTC)
    ns = (base - _EPOCH) // timedelta(seconds=1) * _NS
    if frac:
        ns += int((frac + "000000000")[:9])
    if off and off not in ("Z", "z"):
        sign = 1 if off[0] == "+" else -1
        digits = off[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
        ns -= sign * minutes * 60 * _NS
    return ns


def format_ts(ts_ns: int) -> str:
    """UTC ns as ISO-8601 with ``+00:00`` and microseconds (``2025-07-18T21:00:01.268009+00:00``)."""
    dt = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    return dt.isoformat(timespec="microseconds")


def _opt_ts(value: object) -> int | None:
    if value is None or value == "":
        return None
    return parse_ts_ns(value)


TsNs = Annotated[int, BeforeValidator(parse_ts_ns)]
"""A timestamp field: UTC ns."""
OptTsNs = Annotated[int | None, BeforeValidator(_opt_ts)]


def _none_to_list(value: object) -> object:
    return [] if value is None else value


class WireModel(BaseModel):
    """Base of every model: camelCase aliases, unknown keys ignored, names or aliases accepted."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def wire(self, *, drop_none: tuple[str, ...] = ()) -> dict[str, Any]:
        """The JSON body: camelCase keys, Decimal as float (the shortest repr of a tick price is exact), nested
        models as dicts; fields named in ``drop_none`` are left out when ``None``."""
        out: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            v = getattr(self, name)
            if v is None and name in drop_none:
                continue
            out[field.alias or name] = _jsonable(v)
        return out


def _jsonable(v: object) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, WireModel):
        return v.wire()
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


# ------------------------------------------------------------------------------------------------ entities (3.2)


class Account(WireModel):
    """``Account``: ``simulated`` is newer/SW only (``None`` = unknown). No P&L or loss-limit fields exist (spec 7)."""

    id: int
    name: str = ""
    balance: Decimal = Decimal(0)
    can_trade: bool = False
    is_visible: bool = True
    simulated: bool | None = None


class Contract(WireModel):
    """``Contract``: ``symbolId`` is newer/SW only; :attr:`symbol_id_or_derived` derives ``F.US.<root>`` from the id."""

    id: str
    name: str = ""
    description: str = ""
    tick_size: Decimal
    tick_value: Decimal
    active_contract: bool = True
    symbol_id: str | None = None

    @property
    def symbol_id_or_derived(self) -> str:
        """``symbolId``, or ``<kind>.<region>.<root>`` from ``CON.<kind>.<region>.<root>.<month><yy>``."""
        if self.symbol_id:
            return self.symbol_id
        parts = self.id.split(".")
        return ".".join(parts[1:4]) if len(parts) >= 5 else self.id


class BarRow(WireModel):
    """``Bar``: ``t`` (UTC ns; the bar's start, spec 10.10), ``o h l c`` (points), ``v`` (contracts)."""

    model_config = ConfigDict(alias_generator=None, populate_by_name=True, extra="ignore", frozen=True)

    t: TsNs
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741  (the wire name)
    c: Decimal
    v: int = 0


class OrderRow(WireModel):
    """``Order`` (REST rows and ``GatewayUserOrder`` payloads). Older examples lack ``symbolId``, ``fillVolume``,
    ``filledPrice`` and ``customTag``; SW adds ``trailDistance``, ``trailPrice``, ``parentOrderId``,
    ``linkedOrderId``."""

    id: int
    account_id: int = 0
    contract_id: str = ""
    symbol_id: str | None = None
    creation_timestamp: OptTsNs = None
    update_timestamp: OptTsNs = None
    status: int = 0
    type: int = 0
    side: int = 0
    size: int = 0
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    fill_volume: int = 0
    filled_price: Decimal | None = None
    custom_tag: str | None = None
    trail_distance: Decimal | None = None
    trail_price: Decimal | None = None
    parent_order_id: int | None = None
    linked_order_id: int | None = None

    @field_validator("fill_volume", mode="before")
    @classmethod
    def _fv(cls, v: object) -> object:
        return 0 if v is None else v


class PositionRow(WireModel):
    """``Position``: ``type`` 1 long / 2 short, ``size`` > 0 while open; ``size == 0`` on a hub event means closed."""

    id: int = 0
    account_id: int = 0
    contract_id: str
    creation_timestamp: OptTsNs = None
    type: int = 0
    size: int = 0
    average_price: Decimal = Decimal(0)
    contract_display_name: str | None = None


class TradeRow(WireModel):
    """``Trade``: one fill (a half-turn). ``profitAndLoss`` is ``None`` on an opening half-turn; SW adds
    ``commissions``."""

    id: int
    account_id: int = 0
    contract_id: str
    creation_timestamp: TsNs
    price: Decimal
    profit_and_loss: Decimal | None = None
    fees: Decimal = Decimal(0)
    commissions: Decimal | None = None
    side: int
    size: int
    voided: bool = False
    order_id: int

    @field_validator("fees", mode="before")
    @classmethod
    def _fees(cls, v: object) -> object:
        return 0 if v is None else v


# ------------------------------------------------------------------------------------------------ market payloads (5.4)


class QuoteData(WireModel):
    """``GatewayQuote`` payload; every field optional (partial quotes carry only what changed). No bid/ask sizes."""

    symbol: str | None = None
    symbol_name: str | None = None
    last_price: Decimal | None = None
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    change: Decimal | None = None
    change_percent: Decimal | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: int | None = None
    last_updated: OptTsNs = None
    timestamp: OptTsNs = None


class MarketTradeData(WireModel):
    """One item of a ``GatewayTrade`` list: ``type`` is the aggressor (0 buy, 1 sell), ``volume`` contracts."""

    symbol_id: str | None = None
    price: Decimal
    timestamp: OptTsNs = None
    type: int | None = None
    volume: int = 0


class DepthData(WireModel):
    """One item of a ``GatewayDepth`` list: ``type`` is a DomType (spec 4), ``volume`` the level's new size."""

    timestamp: OptTsNs = None
    type: int = 0
    price: Decimal = Decimal(0)
    volume: int = 0
    current_volume: int | None = None


# ------------------------------------------------------------------------------------------------ responses


class Envelope(WireModel):
    """Every REST reply: ``success``, ``errorCode`` (0 = success; meaning per endpoint, spec 3.5), ``errorMessage``."""

    success: bool = False
    error_code: int = 0
    error_message: str | None = None

    @field_validator("error_code", mode="before")
    @classmethod
    def _code(cls, v: object) -> object:
        return 0 if v is None else v


class LoginResponse(Envelope):
    """``Auth/loginKey``: ``token`` (a JWT)."""

    token: str | None = None


class ValidateResponse(Envelope):
    """``Auth/validate``: ``newToken`` (some servers also set ``token``; either is accepted)."""

    new_token: str | None = None
    token: str | None = None

    @property
    def fresh_token(self) -> str | None:
        """``newToken``, else ``token``."""
        return self.new_token or self.token


class AccountSearchResponse(Envelope):
    """``Account/search``."""

    accounts: Annotated[list[Account], BeforeValidator(_none_to_list)] = Field(default_factory=list)


class ContractSearchResponse(Envelope):
    """``Contract/search`` and ``Contract/available``."""

    contracts: Annotated[list[Contract], BeforeValidator(_none_to_list)] = Field(default_factory=list)


class ContractByIdResponse(Envelope):
    """``Contract/searchById``: ``contract`` (newer) or ``contracts`` (older; DRIFT, spec 3.6)."""

    contract: Contract | None = None
    contracts: Annotated[list[Contract], BeforeValidator(_none_to_list)] = Field(default_factory=list)

    @property
    def item(self) -> Contract | None:
        """``contract``, else ``contracts[0]``, else ``None``."""
        if self.contract is not None:
            return self.contract
        return self.contracts[0] if self.contracts else None


class BarsResponse(Envelope):
    """``History/retrieveBars``: ``bars`` (the server sends newest first; sort defensively)."""

    bars: Annotated[list[BarRow], BeforeValidator(_none_to_list)] = Field(default_factory=list)


class PlaceOrderResponse(Envelope):
    """``Order/place``: ``orderId``, which may be set on a rejection too (spec 3.3): success is ``success`` only."""

    order_id: int | None = None


class OrderSearchResponse(Envelope):
    """``Order/search``, ``Order/searchOpen`` and ``Order/v2/query`` (``totalCount`` on the latter)."""

    orders: Annotated[list[OrderRow], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    total_count: int | None = None


class OrderByIdResponse(Envelope):
    """``Order/searchById`` (SW only)."""

    order: OrderRow | None = None


class PositionSearchResponse(Envelope):
    """``Position/searchOpen``."""

    positions: Annotated[list[PositionRow], BeforeValidator(_none_to_list)] = Field(default_factory=list)


class CloseResponse(Envelope):
    """``Position/closeContract`` / ``partialCloseContract``: envelope, plus ``orderId`` when the server sends it."""

    order_id: int | None = None


class TradeSearchResponse(Envelope):
    """``Trade/search``."""

    trades: Annotated[list[TradeRow], BeforeValidator(_none_to_list)] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ requests


class LoginKeyRequest(WireModel):
    """``Auth/loginKey`` body."""

    user_name: str
    api_key: str

    def __repr__(self) -> str:  # the key never reaches a log line
        return f"LoginKeyRequest(user_name={self.user_name!r}, api_key='**********')"

    __str__ = __repr__


class BracketSpecWire(WireModel):
    """A newer-vintage bracket object: ``ticks`` (unsigned distance) and ``type`` (an OrderType)."""

    ticks: int
    type: int


class PlaceOrderRequest(WireModel):
    """``Order/place`` body (spec 3.3). ``linkedOrderId`` and the bracket objects are omitted when ``None``; the
    three prices are always sent (``null`` when unused), as PXPY does."""

    account_id: int
    contract_id: str
    type: int
    side: int
    size: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    custom_tag: str | None = None
    linked_order_id: int | None = None
    stop_loss_bracket: BracketSpecWire | None = None
    take_profit_bracket: BracketSpecWire | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return self.wire(drop_none=("linked_order_id", "stop_loss_bracket", "take_profit_bracket"))


class ModifyOrderRequest(WireModel):
    """``Order/modify`` body; omitted fields stay unchanged at the server (spec 3.3, UNVERIFIED on live)."""

    account_id: int
    order_id: int
    size: int | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body (``None`` fields left out)."""
        return self.wire(drop_none=("size", "limit_price", "stop_price", "trail_price"))


class RetrieveBarsRequest(WireModel):
    """``History/retrieveBars`` body (all fields required; ``contractId`` a string, spec 3.4)."""

    contract_id: str
    live: bool
    start_time: str
    end_time: str
    unit: int
    unit_number: int
    limit: int
    include_partial_bar: bool = False


class OrderQueryFilter(WireModel):
    """``Order/v2/query`` ``filter``."""

    account_id: int
    statuses: list[int] | None = None
    contract_id: str | None = None
    created_after: str | None = None
    created_before: str | None = None


class OrderQueryRequest(WireModel):
    """``Order/v2/query`` body (SW only)."""

    filter: OrderQueryFilter
    page_size: int | None = None
    page_offset: int | None = None
    sort_by: int | None = None
    sort_direction: int | None = None
    include_total_count: bool | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body (``None`` fields left out, also inside ``filter``)."""
        out = self.wire(drop_none=("page_size", "page_offset", "sort_by", "sort_direction", "include_total_count"))
        out["filter"] = self.filter.wire(drop_none=("statuses", "contract_id", "created_after", "created_before"))
        return out
