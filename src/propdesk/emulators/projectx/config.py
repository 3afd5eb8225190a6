"""Configuration of the local ProjectX gateway (:class:`GatewayConfig`): the server keys of the spec, accounts, feeds.

Every key of the spec's server configuration table (``../shared/specs/projectx-gateway-api.md`` section 1.1) is a
field here with the spec's default: ``bind`` (loopback only), ``token_ttl_s``, ``validate_grace_s``,
``rate_limit.general`` / ``rate_limit.history``, ``user_event_shape``, ``contract_by_id_shape``, ``bracket_mode`` (per
account), ``partial_quotes``, ``market_keepalive_s``, ``max_frame_bytes``, ``live_contracts``, ``emit_remove_action``.
propdesk adds the login credentials, the accounts and their balances, the contract roots, the market-data feeds
replayed from ``../shared/data`` and the replay clock.

Load a file with :func:`load_gateway_config` (TOML or JSON, same keys; unknown keys are refused).
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from propdesk.brokers.sim.config import SimConfig
from propdesk.core.errors import ConfigError
from propdesk.core.textfiles import parse_json, parse_toml, read_utf8

UserEventShape = Literal["wrapped", "bare", "acct_wrapped", "acct_bare"]
ContractByIdShape = Literal["contract", "contracts", "both"]
BracketMode = Literal["position", "auto_oco"]
LiveContracts = Literal["same", "empty"]
FeedKind = Literal["auto", "bars", "trades", "mbo"]
ClockMode = Literal["now", "data"]
MAX_ID_BASE = 2**52
"""The largest ``id_base``: ids up to 2**53 stay exact in a JSON double (any client's number type)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateLimit(_Frozen):
    """At most ``count`` requests per sliding window of ``window_s`` seconds, per token (spec section 9)."""

    count: int = Field(ge=1)
    window_s: float = Field(gt=0)


class RateLimits(_Frozen):
    """``general``: every endpoint but bars (200/60 s); ``history``: ``History/retrieveBars`` (30/30 s; spec 9)."""

    general: RateLimit = RateLimit(count=200, window_s=60)
    history: RateLimit = RateLimit(count=30, window_s=30)


class PastTrade(_Frozen):
    """One fill of an account's past (a ProjectX ``Trade`` row, a half-turn), served by ``Trade/search``.

    Attributes:
        time: when it filled (UTC; a naive time is taken as UTC); before the gateway's start.
        contract_id: the ProjectX contract id (``CON.F.US.EP.Z25``), any listed month of a configured root.
        side: ``buy`` or ``sell``. size: contracts (>= 1). price: the fill price (points).
        pnl: ``profitAndLoss``, USD: the realized PnL of a closing fill, ``None`` for an opening half-turn.
        fees: ``fees``, USD (whole cents, >= 0). voided: ``voided`` (a voided fill does not move the balance).
    """

    time: datetime
    contract_id: str
    side: Literal["buy", "sell"]
    size: int = Field(ge=1)
    price: Decimal
    pnl: Decimal | None = None
    fees: Decimal = Field(default=Decimal(0), ge=0)
    voided: bool = False

    @field_validator("time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v

    @field_validator("pnl", "fees")
    @classmethod
    def _cents(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and (not v.is_finite() or v * 100 != (v * 100).to_integral_value()):
            raise ValueError(f"{v} is not a whole number of cents")
        return v

    @property
    def net(self) -> Decimal:
        """What the fill did to the balance, USD: ``pnl - fees`` (0 when voided)."""
        return Decimal(0) if self.voided else (self.pnl or Decimal(0)) - self.fees


class AccountConfig(_Frozen):
    """One simulated trading account.

    Attributes:
        id: the ProjectX ``accountId`` (int).
        name: the account name (``Account.name``).
        balance: starting balance, USD (whole cents): the balance before ``history``.
        history: the account's past fills, oldest first or not (``Trade/search`` serves them; the account was
            created at the first one). They must leave every contract flat; the account's balance at the start is
            ``balance`` plus every non-voided fill's ``pnl - fees``.
        bracket_mode: ``position`` (TopstepX default: bracket objects rejected with errorCode 2 and an orderId) or
            ``auto_oco`` (bracket children created; spec section 3.3).
        can_trade, is_visible: ``Account.canTrade`` / ``Account.isVisible``; ``can_trade=False`` makes
            ``Order/place`` answer errorCode 4 (AccountViolation).
        active: listed by ``Account/search`` with ``onlyActiveAccounts:true``.
    """

    id: int = Field(ge=1)
    name: str
    balance: Decimal = Decimal("50000")
    bracket_mode: BracketMode = "position"
    can_trade: bool = True
    is_visible: bool = True
    active: bool = True
    history: list[PastTrade] = Field(default_factory=list)

    @model_validator(mode="after")
    def _flat_history(self) -> AccountConfig:
        held: dict[str, int] = {}
        for t in self.history:
            if not t.voided:
                held[t.contract_id] = held.get(t.contract_id, 0) + (t.size if t.side == "buy" else -t.size)
        open_ = sorted(c for c, q in held.items() if q)
        if open_:
            raise ValueError(f"account {self.id}: history leaves a position open in {', '.join(open_)}")
        return self

    @property
    def balance_now(self) -> Decimal:
        """``balance`` plus the net of every past fill, USD."""
        return self.balance + sum((t.net for t in self.history), Decimal(0))

    @field_validator("balance")
    @classmethod
    def _cents(cls, v: Decimal) -> Decimal:
        if not v.is_finite() or v * 100 != (v * 100).to_integral_value():
            raise ValueError(f"balance {v} is not a whole number of cents")
        return v


class FeedConfig(_Frozen):
    """A market-data file replayed as the active contract of each of ``roots``.

    Attributes:
        roots: product roots served from this file (``["ES", "MES"]``: both get the same prices).
        path: the file, relative to ``GatewayConfig.data_dir`` unless absolute: a bar CSV (loaded with the file
            presets of :func:`propdesk.data.loaders.load_bars`), a trade-print CSV (``ts_utc,price[,size,side]``)
            or a Databento MBO file (``*.mbo.dbn.zst``).
        kind: ``auto`` (from the file name), ``bars``, ``trades`` or ``mbo``.
        start: the data time (UTC) the replay starts at; earlier data is history only. ``None``: the first record.
        default_trade_size: contracts per print for trade files without a size column.
        depth_levels: levels per side of the synthetic book derived from bars and trades.
    """

    roots: list[str] = Field(min_length=1)
    path: str
    kind: FeedKind = "auto"
    start: datetime | None = None
    default_trade_size: int = Field(default=1, ge=1)
    depth_levels: int = Field(default=10, ge=1, le=100)

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v


def _default_feeds() -> list[FeedConfig]:
    return [
        FeedConfig(
            roots=["ES", "MES"],
            path="es_1min_topstepx_esz5/ES_1min_20250831_20251114.csv",
            start=datetime(2025, 9, 22, 13, 30, tzinfo=UTC),
        ),
        FeedConfig(
            roots=["NQ", "MNQ"],
            path="nq_1min_firstratedata_sample/NQ_1min_sample.csv",
            start=datetime(2023, 11, 27, 14, 30, tzinfo=UTC),
        ),
    ]


def _default_accounts() -> list[AccountConfig]:
    return [
        AccountConfig(id=11001, name="PRAC-V2-50K-001", bracket_mode="position"),
        AccountConfig(id=11002, name="PRAC-V2-50K-002", bracket_mode="auto_oco"),
    ]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class GatewayConfig(_Frozen):
    """The gateway's configuration (immutable). Keys and defaults: spec section 1.1, plus propdesk's own below.

    Attributes:
        bind: ``host:port``; the host MUST be loopback (``127.0.0.1``, ``::1``, ``localhost``).
        token_ttl_s: JWT lifetime (s).
        validate_grace_s: how long after expiry ``Auth/validate`` still renews a token (s).
        rate_limit: sliding-window limits per token (429 with ``Retry-After`` when exceeded).
        user_event_shape, contract_by_id_shape, partial_quotes, live_contracts, emit_remove_action: wire
            variants (spec 1.1, 3.6, 5.4, 5.5).
        market_keepalive_s: longest silence per subscribed contract before the last quote is re-sent (< 30 s).
        max_frame_bytes: upper bound of one WebSocket frame; larger list payloads are split.
        ping_interval_s: SignalR ping (type 6) interval (spec 5.2: 15 s).
        user_name, api_key: the only credentials ``Auth/loginKey`` accepts (a local test gateway: not secrets).
        jwt_secret: HS256 signing key (random per process unless given).
        admin_token: the bearer token the admin API (``/_propdesk/*``) requires (random per process unless given;
            ``propdesk gateway`` prints it at start).
        max_body_bytes: largest request body (REST and admin; 413 beyond) and hub message (skipped beyond), bytes.
        max_order_size: largest ``size`` of ``Order/place`` / ``Order/modify`` (contracts; larger gets errorCode 2 /
            3): a sanity cap of the emulator, not a prop firm's position limit.
        accounts: the simulated accounts (ids unique).
        roots: product roots listed by ``Contract/search`` / ``available`` (active month of each).
        data_dir: the folder feed paths are relative to (``../shared/data`` beside the checkout).
        feeds: the market data replayed (a root may appear in one feed only).
        speed: replay speed (1.0 = real time; 10 = ten times faster).
        clock_mode: ``now``: each feed's ``start`` is presented as the time the gateway starts (a whole number of
            minutes is added to every timestamp of the feed, so minute bars stay aligned); ``data``: the data's own
            timestamps (all feeds then start at the earliest ``start``).
        autostart: start the replay when the app starts (tests set False and step it through the admin API).
        sim: fill rules and fees of the simulated broker (``native_brackets`` is set per account).
        id_base: the first ``orderId`` and trade ``id`` this gateway process hands out (both int64 in the spec, section
            1; at most ``MAX_ID_BASE`` = 2**52 so every id stays exact in a JSON double). ``None`` (the default): the
            process's wall-clock start in microseconds since the Unix epoch, so ids keep increasing across gateway
            restarts like the real API's (unique within an account; the journal keys a ProjectX fill by account and
            trade id). A fixed base gives tests deterministic ids but repeats them on a restart. Position ids (``int``
            in the spec, kept within int32) start at one more than the seconds from 2020-01-01 UTC to the time
            ``id_base`` stands for (1 for a small fixed base). An account's configured ``history`` fills take the trade
            and order ids 1, 2, ... (the same in every process), so ``id_base`` must exceed their count.
    """

    bind: str = "127.0.0.1:8900"
    token_ttl_s: int = Field(default=86_400, ge=1)
    validate_grace_s: int = Field(default=0, ge=0)
    rate_limit: RateLimits = RateLimits()
    user_event_shape: UserEventShape = "wrapped"
    contract_by_id_shape: ContractByIdShape = "both"
    partial_quotes: bool = False
    market_keepalive_s: float = Field(default=10.0, gt=0, lt=30)
    max_frame_bytes: int = Field(default=1_048_576, ge=1024)
    live_contracts: LiveContracts = "same"
    emit_remove_action: bool = False
    ping_interval_s: float = Field(default=15.0, gt=0)
    user_name: str = "propdesk"
    api_key: str = "propdesk-local-api-key"
    jwt_secret: str = Field(default_factory=lambda: secrets.token_hex(32), repr=False)
    admin_token: str = Field(default_factory=lambda: secrets.token_urlsafe(32), min_length=16, repr=False)
    max_body_bytes: int = Field(default=65_536, ge=1024, le=16_777_216)
    max_order_size: int = Field(default=1_000, ge=1, le=1_000_000)
    accounts: list[AccountConfig] = Field(default_factory=_default_accounts, min_length=1)
    roots: list[str] = Field(default_factory=lambda: ["ES", "MES", "NQ", "MNQ", "6E"], min_length=1)
    data_dir: Path = Path("../shared/data")
    feeds: list[FeedConfig] = Field(default_factory=_default_feeds)
    speed: float = Field(default=1.0, gt=0)
    clock_mode: ClockMode = "now"
    autostart: bool = True
    sim: SimConfig = SimConfig(calendar_check="data")
    id_base: int | None = Field(default=None, ge=1, le=MAX_ID_BASE)

    @field_validator("bind")
    @classmethod
    def _loopback(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"bind {v!r} must be host:port")
        if not _is_loopback(host):
            raise ValueError(f"bind host {host!r} is not a loopback address; the gateway serves 127.0.0.1 only")
        return v

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        ids = [a.id for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ValueError(f"account ids must be unique: {ids}")
        fed = [r for f in self.feeds for r in f.roots]
        if len(set(fed)) != len(fed):
            raise ValueError(f"a root may be served by one feed only: {fed}")
        missing = [r for r in fed if r not in self.roots]
        if missing:
            raise ValueError(f"feed roots {missing} are not in roots {self.roots}")
        past = sum(len(a.history) for a in self.accounts)
        if self.id_base is not None and self.id_base <= past:
            raise ValueError(f"id_base {self.id_base} must exceed the {past} configured history fills (their ids)")
        return self

    @property
    def host(self) -> str:
        """The bind host (loopback)."""
        return self.bind.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The bind port."""
        return int(self.bind.rpartition(":")[2])

    def with_updates(self, **changes: Any) -> GatewayConfig:
        """A validated copy with ``changes`` applied (``model_copy`` would skip validation).

        Raises:
            ConfigError: a change breaks a rule of the model.
        """
        data = self.model_dump()
        data.update(changes)
        try:
            return GatewayConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid gateway configuration: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    """A validation error on one line: ``key.path: message; ...``."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors())


def load_gateway_config(path: str | Path) -> GatewayConfig:
    """Read a gateway configuration from a TOML (``.toml``) or JSON file.

    Raises:
        ConfigError: the file is missing, unreadable, not TOML/JSON, or a key or value is invalid.
    """
    p = Path(path)
    where = f"gateway configuration {p}"
    text = read_utf8(p, where)
    raw: Any = parse_json(text, where) if p.suffix.lower() == ".json" else parse_toml(text, where)
    try:
        return GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: invalid: {_problems(exc)}") from None
