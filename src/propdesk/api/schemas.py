"""The shapes of propdesk's REST and WebSocket API: pydantic models (so the OpenAPI document at
``/api/v1/openapi.json`` describes every body the dashboard reads) and the functions turning the Desk's frozen values
into them.

Conventions: money (USD) and prices (points) are decimal strings (``"6712.25"``, ``"-137.50"``), with integer
``*_ticks`` beside a price where the contract's tick is known; quantities are integer contracts; every time is given
twice, UTC ns (``*_ns``) and UTC ISO-8601 (``*_at``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from propdesk.execution.portfolio import StrategySummary
from propdesk.execution.round_trips import RoundTrip
from propdesk.model.commands import CommandResult, StopMode, StrategyState
from propdesk.model.contracts import ContractSpec
from propdesk.model.data import Bar
from propdesk.model.events import OrderFilled
from propdesk.model.positions import PositionSnapshot
from propdesk.model.price import Money, Price
from propdesk.model.records import AuditEntry, Lockout
from propdesk.node.desk import AccountSummary, OrderView, RuleStatus, StrategyView
from propdesk.node.service import InstanceView
from propdesk.risk.engine import DayClose
from propdesk.storage.instances import ParamVersion

__all__ = [
    "PRICE_PATTERN",
    "AccountOut",
    "AddInstanceIn",
    "AuditOut",
    "BarOut",
    "CancelAllIn",
    "ClosePositionIn",
    "CommandResultOut",
    "ContractOut",
    "DayStatsOut",
    "EventOut",
    "EventPage",
    "FillOut",
    "FlattenIn",
    "InstanceOut",
    "LockoutOut",
    "ModifyOrderIn",
    "OrderIn",
    "OrderOut",
    "OrderPage",
    "ParamVersionOut",
    "ParamsPatchIn",
    "PositionOut",
    "RiskAtStopOut",
    "RollbackIn",
    "RoundTripOut",
    "RuleOut",
    "StopInstanceIn",
    "StrategyOut",
    "StrategyStatsOut",
    "TicketOut",
    "TradingStateIn",
    "iso",
    "money",
    "price",
]

PRICE_PATTERN = r"^-?[0-9]{1,9}(\.[0-9]{1,9})?$"
"""A price in points as a decimal string: at most 9 digits before and 9 after the point (``Price`` holds 1e-9)."""


def iso(ns: int | None) -> str | None:
    """UTC ns as ISO-8601 with microseconds and ``Z`` (``None`` stays ``None``)."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns // 1000 / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")


def money(m: Money | None) -> str | None:
    """USD as a decimal string with cents (``"-137.50"``)."""
    return None if m is None else f"{m.as_decimal():.2f}"


def price(p: Price | None) -> str | None:
    """Points as a plain decimal string (``"6712.25"``)."""
    return None if p is None else format(p.as_decimal(), "f")


def _dec(d: Decimal | float | None) -> str | None:
    return None if d is None else format(Decimal(str(d)), "f")


SideName = Literal["BUY", "SELL"]
StateName = Literal["ACTIVE", "REDUCING", "HALTED"]


def _side(name: str) -> SideName:
    return "BUY" if name == "BUY" else "SELL"


def _state(name: str) -> StateName:
    """A trading state's name; anything unknown reads as the most restrictive (fail closed)."""
    return "ACTIVE" if name == "ACTIVE" else "REDUCING" if name == "REDUCING" else "HALTED"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# ------------------------------------------------------------------------------------------------ accounts and risk


class LockoutOut(_Out):
    """An active lockout: the rule that set it, why, since and until when (``None``: until further notice); firm
    lockouts cannot be lifted."""

    rule_id: str
    reason: str
    firm: bool
    set_at_ns: int
    set_at: str | None
    expires_at_ns: int | None
    expires_at: str | None

    @classmethod
    def of(cls, lo: Lockout) -> LockoutOut:
        return cls(
            rule_id=lo.rule_id,
            reason=lo.reason,
            firm=lo.firm,
            set_at_ns=lo.set_at_ns,
            set_at=iso(lo.set_at_ns),
            expires_at_ns=lo.expires_at_ns,
            expires_at=iso(lo.expires_at_ns),
        )


class AccountOut(_Out):
    """One account with its prop-firm figures (USD decimal strings; ``None`` where the node has no risk engine)."""

    account_id: int
    balance_usd: str
    equity_usd: str
    day_realized_net_usd: str
    unrealized_usd: str
    day_net_usd: str
    mll_floor_usd: str | None
    mll_distance_usd: str | None = Field(description="equity above the maximum loss limit's floor")
    daily_loss_left_usd: str | None
    daily_loss_rule: str | None
    consistency_share: str | None = Field(description="best day's net PnL / total profit (R16)")
    consistency_limit: str | None
    trades_today: int
    trading_state: StateName
    state_reasons: list[str]
    lockouts: list[LockoutOut]
    connected: bool
    ts_ns: int
    ts: str | None

    @classmethod
    def of(cls, a: AccountSummary) -> AccountOut:
        return cls(
            account_id=a.account_id,
            balance_usd=money(a.balance_usd) or "0.00",
            equity_usd=money(a.equity_usd) or "0.00",
            day_realized_net_usd=money(a.day_realized_net_usd) or "0.00",
            unrealized_usd=money(a.unrealized_usd) or "0.00",
            day_net_usd=money(a.day_net_usd) or "0.00",
            mll_floor_usd=money(a.mll_floor_usd),
            mll_distance_usd=money(a.mll_distance_usd),
            daily_loss_left_usd=money(a.daily_loss_left_usd),
            daily_loss_rule=a.daily_loss_rule,
            consistency_share=_dec(a.consistency_share),
            consistency_limit=_dec(a.consistency_limit),
            trades_today=a.trades_today,
            trading_state=_state(a.trading_state),
            state_reasons=list(a.state_reasons),
            lockouts=[LockoutOut.of(lo) for lo in a.lockouts],
            connected=a.connected,
            ts_ns=a.ts_ns,
            ts=iso(a.ts_ns),
        )


class RuleOut(_Out):
    """One risk rule now: its figure, limit and headroom (USD for R1/R2/R3, mini-equivalent contracts for R5, else
    ``None``; decimal strings), its state and the gate's last decision."""

    rule_id: str
    firm: bool
    describe: str
    state: str
    reason: str
    used_fraction: float | None
    value: str | None
    limit: str | None
    headroom: str | None
    last_decision: str

    @classmethod
    def of(cls, r: RuleStatus) -> RuleOut:
        return cls(
            rule_id=r.rule_id,
            firm=r.firm,
            describe=r.describe,
            state=r.state,
            reason=r.reason,
            used_fraction=r.used_fraction,
            value=_dec(r.value),
            limit=_dec(r.limit),
            headroom=_dec(r.headroom),
            last_decision=r.last_decision,
        )


class TradingStateIn(BaseModel):
    """Put an account in a trading state (towards a less restrictive one only with the ``admin`` scope)."""

    model_config = ConfigDict(extra="forbid")
    state: Literal["ACTIVE", "REDUCING", "HALTED"]
    reason: str = Field(default="", max_length=500)


class FlattenIn(BaseModel):
    """Why the account is flattened (kept in the journal)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


# ------------------------------------------------------------------------------------------------ positions, orders


class PositionOut(_Out):
    """An open position (account level): signed contracts, average price (points), PnL (USD)."""

    account_id: int
    symbol: str
    signed_qty: int
    avg_price: str | None
    realized_pnl_usd: str
    fees_usd: str
    unrealized_pnl_usd: str | None
    opened_ts_ns: int
    opened_at: str | None
    last_ts_ns: int
    fill_count: int

    @classmethod
    def of(cls, p: PositionSnapshot) -> PositionOut:
        return cls(
            account_id=int(p.account_id),
            symbol=p.symbol,
            signed_qty=p.signed_qty,
            avg_price=price(p.avg_price),
            realized_pnl_usd=money(p.realized_pnl) or "0.00",
            fees_usd=money(p.fees) or "0.00",
            unrealized_pnl_usd=money(p.unrealized_pnl),
            opened_ts_ns=p.opened_ts_ns,
            opened_at=iso(p.opened_ts_ns) if p.opened_ts_ns else None,
            last_ts_ns=p.last_ts_ns,
            fill_count=p.fill_count,
        )


class ClosePositionIn(BaseModel):
    """Close a position at market: ``qty`` contracts of it (``None``: all)."""

    model_config = ConfigDict(extra="forbid")
    qty: int | None = Field(default=None, ge=1, le=10_000)
    reason: str = Field(default="", max_length=500)


class OrderOut(_Out):
    """A working order (prices in points; ``*_ticks``: the price in ticks of the contract)."""

    account_id: int
    client_order_id: str
    symbol: str
    side: SideName
    order_type: str
    qty: int
    filled_qty: int
    limit_price: str | None
    limit_ticks: int | None
    stop_price: str | None
    stop_ticks: int | None
    status: str
    tag: str
    parent_id: str | None

    @classmethod
    def of(cls, account_id: int, o: OrderView, tick: Price | None) -> OrderOut:
        def ticks(p: Price | None) -> int | None:
            return None if p is None or tick is None or not p.is_aligned(tick) else p.ticks(tick)

        return cls(
            account_id=account_id,
            client_order_id=str(o.client_order_id),
            symbol=o.symbol,
            side=_side(o.side),
            order_type=o.order_type,
            qty=o.qty,
            filled_qty=o.filled_qty,
            limit_price=price(o.limit_price),
            limit_ticks=ticks(o.limit_price),
            stop_price=price(o.stop_price),
            stop_ticks=ticks(o.stop_price),
            status=o.status,
            tag=o.tag,
            parent_id=None if o.parent_id is None else str(o.parent_id),
        )


class OrderPage(_Out):
    """One page of working orders; ``next_cursor`` fetches the next (``None``: the last page)."""

    items: list[OrderOut]
    next_cursor: str | None


class OrderIn(BaseModel):
    """A new order. ``type`` MARKET needs no price, LIMIT a ``limit_price``, STOP a ``stop_price`` (points, decimal
    strings); a bracket is ``stop_loss_ticks`` / ``take_profit_ticks`` from the entry's fill."""

    model_config = ConfigDict(extra="forbid")
    account_id: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="the account (optional when the desk runs one)"
    )
    symbol: str = Field(min_length=2, max_length=16, pattern=r"^[A-Z0-9]+$")
    side: SideName
    qty: int = Field(ge=1, le=10_000, description="contracts")
    type: Literal["MARKET", "LIMIT", "STOP"] = "MARKET"
    limit_price: str | None = Field(default=None, pattern=PRICE_PATTERN)
    stop_price: str | None = Field(default=None, pattern=PRICE_PATTERN)
    stop_loss_ticks: int | None = Field(default=None, ge=1, le=100_000)
    take_profit_ticks: int | None = Field(default=None, ge=1, le=100_000)
    tag: str = Field(default="desk", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


class ModifyOrderIn(BaseModel):
    """New total quantity (contracts) or prices (points) of a working order; absent fields stay."""

    model_config = ConfigDict(extra="forbid")
    qty: int | None = Field(default=None, ge=1, le=10_000)
    limit_price: str | None = Field(default=None, pattern=PRICE_PATTERN)
    stop_price: str | None = Field(default=None, pattern=PRICE_PATTERN)


class CancelAllIn(BaseModel):
    """Cancel every working order of the account, or of one contract."""

    model_config = ConfigDict(extra="forbid")
    account_id: int | None = None
    symbol: str | None = Field(default=None, min_length=2, max_length=16, pattern=r"^[A-Z0-9]+$")


class RiskAtStopOut(_Out):
    """What a dry-run order risks if its stop is hit (USD), and as a share of each headroom."""

    at_risk_usd: str
    daily_loss_headroom_usd: str | None
    mll_headroom_usd: str | None
    daily_loss_share: str | None
    mll_share: str | None


class CommandResultOut(_Out):
    """The gate's verdict on a command (answered with 202 when accepted; a dry run answers 200 either way)."""

    idempotency_key: str
    command: str
    accepted: bool
    rule_id: str
    reason: str
    headroom_usd: str | None
    headroom_qty: str | None
    client_order_ids: list[str]
    risk: RiskAtStopOut | None
    dry_run: bool
    replayed: bool
    ts_ns: int
    ts: str | None

    @classmethod
    def of(cls, r: CommandResult) -> CommandResultOut:
        v = r.verdict
        risk = None
        if r.risk is not None:
            risk = RiskAtStopOut(
                at_risk_usd=money(r.risk.at_risk_usd) or "0.00",
                daily_loss_headroom_usd=money(r.risk.daily_loss_headroom_usd),
                mll_headroom_usd=money(r.risk.mll_headroom_usd),
                daily_loss_share=_dec(r.risk.daily_loss_share),
                mll_share=_dec(r.risk.mll_share),
            )
        return cls(
            idempotency_key=r.idempotency_key,
            command=r.command,
            accepted=v.accepted,
            rule_id=v.rule_id,
            reason=v.reason,
            headroom_usd=money(v.headroom_usd),
            headroom_qty=_dec(v.headroom_qty),
            client_order_ids=[str(c) for c in r.client_order_ids],
            risk=risk,
            dry_run=r.dry_run,
            replayed=r.replayed,
            ts_ns=r.ts_ns,
            ts=iso(r.ts_ns) if r.ts_ns else None,
        )


# ------------------------------------------------------------------------------------------------ fills and stats


class FillOut(_Out):
    """An execution: contracts at a price (points, and ticks), its fee (USD)."""

    account_id: int
    client_order_id: str
    trade_id: str
    symbol: str
    side: SideName
    qty: int
    price: str
    price_ticks: int | None
    fee_usd: str
    tag: str
    ts_ns: int
    ts: str | None

    @classmethod
    def of(cls, f: OrderFilled, tick: Price | None) -> FillOut:
        return cls(
            account_id=int(f.account_id),
            client_order_id=str(f.client_order_id),
            trade_id=f.trade_id,
            symbol=f.symbol,
            side=_side(f.side.name),
            qty=f.qty,
            price=price(f.price) or "0",
            price_ticks=f.price.ticks(tick) if tick is not None and f.price.is_aligned(tick) else None,
            fee_usd=money(f.fee) or "0.00",
            tag=f.tag,
            ts_ns=f.ts_event_ns,
            ts=iso(f.ts_event_ns),
        )


class RoundTripOut(_Out):
    """A closed round trip (flat to flat) of one strategy tag and contract: ``direction`` +1 long, -1 short."""

    account_id: int
    symbol: str
    tag: str
    direction: int
    qty: int
    entry_price: str
    exit_price: str
    gross_pnl_usd: str
    fees_usd: str
    net_pnl_usd: str
    fills: int
    entry_ts_ns: int
    entry_at: str | None
    exit_ts_ns: int
    exit_at: str | None

    @classmethod
    def of(cls, account_id: int, t: RoundTrip) -> RoundTripOut:
        return cls(
            account_id=account_id,
            symbol=t.symbol,
            tag=t.tag,
            direction=t.direction,
            qty=t.qty,
            entry_price=price(t.entry_price) or "0",
            exit_price=price(t.exit_price) or "0",
            gross_pnl_usd=money(t.gross_pnl) or "0.00",
            fees_usd=money(t.fees) or "0.00",
            net_pnl_usd=money(t.gross_pnl - t.fees) or "0.00",
            fills=t.fills,
            entry_ts_ns=t.entry_ts_ns,
            entry_at=iso(t.entry_ts_ns),
            exit_ts_ns=t.exit_ts_ns,
            exit_at=iso(t.exit_ts_ns),
        )


class DayStatsOut(_Out):
    """One trading day (CME date; ``complete`` false for today so far): net PnL, balance and MLL floor (USD)."""

    account_id: int
    trading_date: str
    net_pnl_usd: str
    balance_usd: str
    mll_floor_usd: str | None
    trades: int
    contracts: int
    complete: bool

    @classmethod
    def of(cls, account_id: int, d: DayClose) -> DayStatsOut:
        return cls(
            account_id=account_id,
            trading_date=d.trading_date.isoformat(),
            net_pnl_usd=money(d.net_pnl) or "0.00",
            balance_usd=money(d.balance) or "0.00",
            mll_floor_usd=money(d.mll_floor),
            trades=d.trades,
            contracts=d.contracts,
            complete=d.complete,
        )


class StrategyStatsOut(_Out):
    """One strategy tag's PnL on an account (USD), its open positions and fill count."""

    account_id: int
    tag: str
    realized_pnl_usd: str
    fees_usd: str
    unrealized_pnl_usd: str
    open_positions: list[PositionOut]
    fill_count: int

    @classmethod
    def of(cls, account_id: int, s: StrategySummary) -> StrategyStatsOut:
        return cls(
            account_id=account_id,
            tag=s.tag,
            realized_pnl_usd=money(s.realized_pnl) or "0.00",
            fees_usd=money(s.fees) or "0.00",
            unrealized_pnl_usd=money(s.unrealized_pnl) or "0.00",
            open_positions=[PositionOut.of(p) for p in s.open_positions],
            fill_count=s.fill_count,
        )


class AuditOut(_Out):
    """One risk-engine audit entry (``point``: pre, fill, quote, clock, condition ...)."""

    account_id: int
    ts_ns: int
    ts: str | None
    point: str
    action: str
    state: str
    reasons: list[str]
    inputs: dict[str, Any]
    step: str

    @classmethod
    def of(cls, e: AuditEntry) -> AuditOut:
        return cls(
            account_id=int(e.account),
            ts_ns=e.ts_ns,
            ts=iso(e.ts_ns),
            point=e.point,
            action=e.action,
            state=e.state,
            reasons=list(e.reasons),
            inputs={
                k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for k, v in e.inputs.items()
            },
            step=e.step,
        )


class ContractOut(_Out):
    """A contract's specification: tick size (points) and tick value (USD), point value, session."""

    root: str
    name: str
    exchange: str
    currency: str
    tick_size: str
    tick_value_usd: str
    point_value_usd: str
    micro_of: str | None
    mini_weight: str
    timezone: str
    session_open: str
    session_close: str

    @classmethod
    def of(cls, c: ContractSpec) -> ContractOut:
        return cls(
            root=str(c.root),
            name=c.name,
            exchange=c.exchange,
            currency=c.currency,
            tick_size=price(c.tick_size) or "0",
            tick_value_usd=money(c.tick_value) or "0.00",
            point_value_usd=format(c.point_value, "f"),
            micro_of=None if c.micro_of is None else str(c.micro_of),
            mini_weight=format(c.topstepx_mini_weight, "f"),
            timezone=c.timezone,
            session_open=c.session_open.isoformat(),
            session_close=c.session_close.isoformat(),
        )


class BarOut(_Out):
    """One bar (prices in points) opening at ``ts_open_ns``."""

    symbol: str
    timeframe: str
    open: str
    high: str
    low: str
    close: str
    volume: int
    ts_open_ns: int
    ts_close_ns: int
    ts_open: str | None

    @classmethod
    def of(cls, b: Bar) -> BarOut:
        return cls(
            symbol=b.symbol,
            timeframe=str(b.timeframe),
            open=format(Decimal(str(b.open)), "f"),
            high=format(Decimal(str(b.high)), "f"),
            low=format(Decimal(str(b.low)), "f"),
            close=format(Decimal(str(b.close)), "f"),
            volume=int(b.volume),
            ts_open_ns=b.ts_open_ns,
            ts_close_ns=b.ts_close_ns,
            ts_open=iso(b.ts_open_ns),
        )


# ------------------------------------------------------------------------------------------------ strategies


class StrategyOut(_Out):
    """A strategy class that can be instantiated, with its parameters' JSON Schema."""

    spec: str
    source: str
    origin: str
    description: str
    params_schema: dict[str, Any]


class InstanceOut(_Out):
    """A named strategy instance: its desired state, parameter version and parameters, and ``waiting`` (``""`` on
    its account's node, else why not yet)."""

    name: str
    account_id: int
    strategy: str
    symbol: str
    state: StrategyState
    version: int
    params: dict[str, Any]
    waiting: str

    @classmethod
    def of(cls, i: InstanceView) -> InstanceOut:
        return cls(
            name=i.name,
            account_id=i.account_id,
            strategy=i.strategy,
            symbol=i.symbol,
            state=i.state,
            version=i.version,
            params=dict(i.params),
            waiting=i.waiting,
        )

    @classmethod
    def of_desk(cls, account_id: int, v: StrategyView) -> InstanceOut:
        return cls(
            name=v.tag,
            account_id=account_id,
            strategy=v.name,
            symbol=v.symbol,
            state=v.state,
            version=v.version,
            params={
                k: x if isinstance(x, (str, int, float, bool)) or x is None else str(x) for k, x in v.params.items()
            },
            waiting="",
        )


class AddInstanceIn(BaseModel):
    """A new strategy instance: its name (the orders' tag), strategy reference, account, contract and parameters."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    strategy: str = Field(min_length=1, max_length=200)
    account_id: int | None = None
    symbol: str = Field(default="", max_length=16)
    params: dict[str, Any] = Field(default_factory=dict)
    state: StrategyState = StrategyState.RUNNING
    reason: str = Field(default="", max_length=500)


class StopInstanceIn(BaseModel):
    """How to stop an instance: ``leave`` what it holds, ``cancel`` its working orders, or ``flatten``."""

    model_config = ConfigDict(extra="forbid")
    mode: StopMode = StopMode.LEAVE


class ParamsPatchIn(BaseModel):
    """Parameters to change (name -> value); ``If-Match`` names the version they were edited from."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(min_length=1)
    reason: str = Field(default="", max_length=500)


class RollbackIn(BaseModel):
    """Go back to the parameters of a stored ``version`` (they become a new version)."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    reason: str = Field(default="", max_length=500)


class ParamVersionOut(_Out):
    """One stored parameter version of an instance: full parameters, who, from where, why, when."""

    instance: str
    version: int
    params: dict[str, Any]
    changed_by: str
    source: str
    reason: str
    ts_ns: int
    ts: str | None

    @classmethod
    def of(cls, v: ParamVersion) -> ParamVersionOut:
        return cls(
            instance=v.instance,
            version=v.version,
            params=dict(v.params),
            changed_by=v.changed_by,
            source=v.source,
            reason=v.reason,
            ts_ns=v.ts_ns,
            ts=iso(v.ts_ns),
        )


# ------------------------------------------------------------------------------------------------ events, tickets


class EventOut(_Out):
    """One event of the stream, as the WebSocket sends it: ``topic`` the stream's name (``orders``, ``positions``,
    ``account``, ``risk``, ``strategies``, ``quotes``), ``type`` the event's kind (``filled``, ``opened`` ...),
    ``data`` its payload (prices as ``*_raw`` = points x 1e9, money as ``*_cents``)."""

    seq: int
    ts_ns: int
    topic: str
    type: str
    account: int | None
    data: Any


class EventPage(_Out):
    """Events after ``after_seq`` (ascending); ``seq_head`` the newest published; ``next_after_seq`` the cursor of
    the next page."""

    items: list[EventOut]
    seq_head: int
    next_after_seq: int


class TicketOut(_Out):
    """A single-use WebSocket ticket (give it in the hello within ``ttl_s`` seconds)."""

    ticket: str
    ttl_s: float
