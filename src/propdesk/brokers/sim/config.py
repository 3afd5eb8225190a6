"""Configuration of the simulated broker (:class:`SimConfig`): fill model, slippage, partial fills, fees, brackets.

Every field has a safe default for backtests. Fees default to zero: no authoritative, current TopstepX fee table was
verifiable from this project's sources (the ProjectX spec says only that each ``Trade`` row carries ``fees`` and,
on newer gateways, ``commissions``: ``../shared/specs/projectx-gateway-api.md`` section 3.2; whether ``fees`` includes
commissions is an open question there, section 10). Configure the firm's published per-side figures explicitly,
e.g. ``commission_per_side_usd="0.50"`` and ``exchange_fee_per_side_usd={"ES": "1.40", "MES": "0.37"}``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from propdesk.model.price import Money

FillModel = Literal["next-open", "bar-close"]
LimitFill = Literal["touch", "through"]
CalendarCheck = Literal["calendar", "data", "off"]
FlattenFill = Literal["next-price", "last-price"]


def _whole_cents(value: Decimal, what: str) -> Decimal:
    if not value.is_finite() or value < 0:
        raise ValueError(f"{what} {value} must be a non-negative amount of USD")
    if value * 100 != (value * 100).to_integral_value():
        raise ValueError(f"{what} {value} is not a whole number of cents")
    return value


class SimConfig(BaseModel):
    """How the simulated broker fills orders and what it charges (immutable).

    Attributes:
        fill_model: ``next-open`` (default): a market order fills at the next price event after it is sent (a
            market order sent on bar t's close fills at bar t+1's open). ``bar-close``: it fills at once at the last
            known price (the close of the bar just processed) - the classic, slightly optimistic backtest.
        limit_fill: ``touch`` (default): a limit fills when the price reaches it; ``through``: only when the price
            trades beyond it (a bar's high/low strictly past the limit, a print strictly past it).
        slippage_ticks: ticks (>= 0) added against the order to every market-type fill (market orders, triggered
            stops) from bars, trades and quotes. Limit fills get none; L2 walks get none (walking the book is the
            slippage).
        partial_fills: when True, fills are bounded by the traded volume: a bar's volume, a print's size, a quote's
            displayed size or an L2 level's size, times ``participation`` (floored to whole contracts).
        participation: fraction (0, 1] of the traded/displayed volume the account may take.
        commission_per_side_usd: commission per contract per side (USD, whole cents), charged on every fill.
        exchange_fee_per_side_usd: exchange + clearing + NFA fees per contract per side by root (USD, whole
            cents); roots not listed use ``default_exchange_fee_per_side_usd``.
        default_exchange_fee_per_side_usd: the fee for roots missing from ``exchange_fee_per_side_usd``.
        native_brackets: True = the account behaves like a ProjectX account in Auto OCO bracket mode (brackets
            accepted, children suspended until the entry fills); False = Position Brackets mode (an order with a
            bracket is rejected, as ProjectX does: spec section 3.3).
        calendar_check: how "market closed" is decided. With ``calendar`` and ``data`` (default) nothing fills
            while propdesk's trading calendar says the contract's market is closed (``model/resources/calendar.toml``
            over CMES: daily halt, weekends, holidays, holiday halts, early closes): market data inside a closed
            period is not traded and reported once per period as a data warning, a new order is rejected, a
            ``close_position``/``flatten`` order waits for the reopen. ``data`` also rejects a new order when no
            market data for the symbol was processed within ``data_open_tolerance_ns`` before now (historical
            replays). ``off``: never closed (synthetic tests; like-for-like comparisons with engines that have no
            exchange calendar).
        data_open_tolerance_ns: for ``calendar_check="data"`` (UTC ns, default 60 s).
        flatten_fill: how ``close_position``/``flatten`` orders fill: ``next-price`` (default) at the next price
            event like any market order, ``last-price`` at once at the last known price (risk enforcement).
        day_expiry_timer: also expire DAY orders with a clock timer at each contract's ``session_close`` (for live
            paper trading, where no bar may arrive after the close). Off by default: in replays the check on each
            price event is exact and a timer could fire before the session's last bar is matched.
        book_levels: how many levels per side to read from an L2 book object passed to ``process_depth``.
        account_name: the name reported in ``AccountReport``.

    Raises:
        pydantic.ValidationError: for a value outside the rules above (negative ticks, a fee in fractions of a
            cent, participation outside (0, 1], unknown literals, unknown fields).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fill_model: FillModel = "next-open"
    limit_fill: LimitFill = "touch"
    slippage_ticks: int = Field(default=0, ge=0)
    partial_fills: bool = False
    participation: float = Field(default=1.0, gt=0.0, le=1.0)
    commission_per_side_usd: Decimal = Decimal(0)
    exchange_fee_per_side_usd: dict[str, Decimal] = Field(default_factory=dict)
    default_exchange_fee_per_side_usd: Decimal = Decimal(0)
    native_brackets: bool = True
    calendar_check: CalendarCheck = "data"
    data_open_tolerance_ns: int = Field(default=60_000_000_000, ge=0)
    flatten_fill: FlattenFill = "next-price"
    day_expiry_timer: bool = False
    book_levels: int = Field(default=10, ge=1)
    account_name: str = "SIM"

    @field_validator("commission_per_side_usd", "default_exchange_fee_per_side_usd")
    @classmethod
    def _check_amount(cls, v: Decimal) -> Decimal:
        return _whole_cents(v, "fee")

    @field_validator("exchange_fee_per_side_usd")
    @classmethod
    def _check_fees(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for root, fee in v.items():
            _whole_cents(fee, f"exchange fee of {root}")
        return v

    def fee_per_contract(self, root: str) -> Money:
        """Commission plus exchange fee for one contract on one side of ``root`` (exact USD)."""
        exch = self.exchange_fee_per_side_usd.get(root, self.default_exchange_fee_per_side_usd)
        return Money.of(self.commission_per_side_usd + exch)
