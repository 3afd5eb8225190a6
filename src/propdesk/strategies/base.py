"""The strategy base class and the context a strategy trades through.

A strategy knows nothing of the broker, the clock's kind, or whether it runs in a backtest, a replay or live
(ARCHITECTURE.md, "Parity"). It receives market data and events through its ``on_*`` methods and acts through a
:class:`StrategyContext`, which the trading node implements over its order manager, portfolio and clock. The
context is a Protocol defined here because ``strategies/`` may import only ``core``, ``model`` and ``data``.

Life cycle (called by the node): ``on_start`` once before the first data, then ``on_bar`` / ``on_quote`` /
``on_trade`` for each market-data record of the strategy's symbol, ``on_order_event`` for each event of an order it
placed, ``on_position_changed`` after each change of its position, and ``on_stop`` once at the end.

**Position.** A strategy's position is the position manager's attribution to its tag (:attr:`Strategy.position`,
through the context), never a count the strategy keeps: a flatten by the risk engine, a close typed into the
broker's UI, a fill found by reconciliation and a bracket child filled by the broker all move it.
``on_position_changed`` receives each change as a :class:`~propdesk.model.positions.StrategyPositionChange` whose
``cause`` (:class:`~propdesk.model.positions.PositionCause`) says who moved it; a strategy that keeps state about its
position (a stop, a direction) must reset it when ``cause.outside`` and re-arm its entries. Registered
indicators are updated with each closed bar *before* ``on_bar`` runs, so ``on_bar`` sees them current.

Timeframes. A strategy trades bars of one timeframe, :attr:`StrategyConfig.timeframe` (``--param timeframe=5m``;
empty: the data's timeframe), resolved by the node into :attr:`Strategy.timeframe`. It may register more with
:meth:`Strategy.subscribe_bars` (in ``__init__`` or ``on_start``): each extra timeframe's bars go to the handler
given, or to ``on_bar`` (tell them apart by ``bar.timeframe``); indicators registered with that timeframe are
updated with its bars first. Bars of any timeframe coarser than the data are built by the node's bar feeds
(:mod:`propdesk.data.aggregation.feeds`: exchange time, CME-session aware, ``1d`` = the CME session closing at
17:00 CT), identically in backtests, replays and live; a timeframe finer than the data is a
:class:`~propdesk.core.errors.ConfigError`.

Configuration is a frozen pydantic model (:class:`StrategyConfig` subclass), built from ``--param k=v`` pairs by
:meth:`Strategy.from_params`; a bad parameter raises :class:`~propdesk.core.errors.ConfigError` naming it. Give each
field a ``description`` (with its unit: contracts, ticks, points, bars): ``propdesk strategies list`` and ``show``
print it from the model's JSON Schema (:func:`config_schema`).

**Live-changeable parameters.** A field whose new value may take effect on a running strategy, without a warm-up,
is marked with ``json_schema_extra={"live": True}``::

    take_profit_ticks: int = Field(default=16, ge=1, description="...", json_schema_extra={"live": True})

Sizes and thresholds read when a signal is acted on are live; indicator periods are not (a new period needs a new
warm-up), nor are the symbol, tag and timeframe. :func:`live_fields` lists the marked fields and
:func:`config_schema` shows ``"live": true`` or ``false`` on every property.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from propdesk.core.errors import ConfigError
from propdesk.data.indicators.base import Indicator
from propdesk.model.data import Bar, QuoteTick, Timeframe, TradeTick
from propdesk.model.enums import Side
from propdesk.model.events import OrderEvent
from propdesk.model.orders import Order
from propdesk.model.positions import StrategyPositionChange
from propdesk.model.price import Money, Price

IndicatorT = TypeVar("IndicatorT", bound=Indicator)

LIVE_KEY = "live"
"""The JSON-Schema key that marks a live-changeable field (``Field(json_schema_extra={"live": True})``)."""


class StrategyConfig(BaseModel):
    """Base configuration every strategy shares.

    Attributes:
        symbol: the contract it trades (``ESZ5``) or a root (``ES``) the node resolves.
        qty: contracts per entry (> 0).
        tag: the attribution tag on its orders; empty means the strategy's ``name``.
        timeframe: the bar timeframe it trades on (``<n><s|m|h|d>``: ``30s``, ``5m``, ``4h``, ``1d`` = the CME
            session); empty (the default) means the data's timeframe (1m live).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(default="ES", description="the contract (ESZ5) or root (ES) it trades")
    qty: int = Field(default=1, description="contracts per entry", json_schema_extra={LIVE_KEY: True})
    tag: str = Field(default="", description="attribution tag on its orders (empty: the strategy's name)")
    timeframe: str = Field(
        default="", description="bar timeframe <n><s|m|h|d>, e.g. 5m or 1d (empty: the data's timeframe)"
    )

    @field_validator("timeframe")
    @classmethod
    def _valid_timeframe(cls, value: str) -> str:
        """Normalise to ``<n><unit>``; a malformed timeframe is a validation error naming the field."""
        return str(Timeframe.parse(value)) if value.strip() else ""


class StrategyContext(Protocol):
    """What a strategy may do and see. The node implements it; tests use a stub.

    Prices are :class:`Price` on the contract's tick; quantities are contracts; timestamps UTC ns. Order methods
    return the created :class:`Order` (already submitted, or DENIED with a reason by the risk gate).
    """

    def now_ns(self) -> int:
        """The clock's time (UTC ns)."""
        ...

    def tick_size(self, symbol: str) -> Price:
        """The contract's tick size (points)."""
        ...

    def position_qty(self, symbol: str, tag: str) -> int:
        """The signed position (contracts) attributed to ``tag`` in ``symbol``."""
        ...

    def market(self, symbol: str, side: Side, qty: int, tag: str) -> Order:
        """Submit a market order."""
        ...

    def limit(self, symbol: str, side: Side, qty: int, price: Price, tag: str) -> Order:
        """Submit a limit order."""
        ...

    def stop(self, symbol: str, side: Side, qty: int, price: Price, tag: str) -> Order:
        """Submit a stop-market order."""
        ...

    def bracket(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        *,
        stop_loss_ticks: int | None,
        take_profit_ticks: int | None,
        entry_price: Price | None = None,
    ) -> Order:
        """Submit an entry (market, or limit at ``entry_price``) with stop-loss/take-profit children in ticks."""
        ...

    def modify(self, order: Order, *, qty: int | None = None, price: Price | None = None) -> None:
        """Change a working order's quantity or price (its limit price, or its stop price for a stop)."""
        ...

    def cancel(self, order: Order) -> None:
        """Cancel a working order."""
        ...

    def close_position(self, symbol: str, tag: str) -> None:
        """Close the position attributed to ``tag`` in ``symbol`` at market and cancel its working orders."""
        ...

    def realized_pnl(self, tag: str) -> Money:
        """Realized PnL (USD, net of fees) attributed to ``tag``."""
        ...


class Strategy:
    """Base class of every strategy. Subclasses set ``name`` and ``config_cls`` and override ``on_*`` methods.

    The node calls :meth:`bind` before :meth:`on_start`; the helpers (``buy``, ``sell``, ``close`` ...) then act
    through the bound :class:`StrategyContext` with the strategy's symbol, quantity and tag.

    Raises:
        RuntimeError: from the helpers when the strategy is not bound to a context.
    """

    name: ClassVar[str] = "strategy"
    config_cls: ClassVar[type[StrategyConfig]] = StrategyConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        self.config = config if config is not None else self.config_cls()
        self.symbol = self.config.symbol
        self.tag = self.config.tag or self.name
        self.log = logging.getLogger(f"propdesk.strategy.{self.name}")
        self._ctx: StrategyContext | None = None
        self._indicators: list[Indicator] = []
        self.timeframe: Timeframe | None = Timeframe.parse(self.config.timeframe) if self.config.timeframe else None
        self._extra_bars: dict[Timeframe, Callable[[Bar], None] | None] = {}
        self._extra_indicators: dict[Timeframe, list[Indicator]] = {}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Strategy:
        """Build the strategy from ``--param`` pairs (strings are coerced by pydantic).

        Raises:
            ConfigError: a parameter is unknown or invalid; the message names it.
        """
        try:
            config = cls.config_cls.model_validate(params)
        except ValidationError as exc:
            valid = ", ".join(sorted(cls.config_cls.model_fields))
            problems = "; ".join(
                f"unknown parameter {'.'.join(str(p) for p in err['loc'])!r} (valid: {valid})"
                if err["type"] == "extra_forbidden"
                else f"{'.'.join(str(p) for p in err['loc']) or '<params>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"strategy {cls.name}: {problems}") from None
        return cls(config)

    # --- wiring ---------------------------------------------------------------------------------------------

    def bind(self, ctx: StrategyContext, symbol: str | None = None, timeframe: Timeframe | None = None) -> None:
        """Attach the context (and the resolved contract symbol, when the config named a root, and the resolved
        timeframe, when the config left it to the data)."""
        self._ctx = ctx
        if symbol is not None:
            self.symbol = symbol
        if timeframe is not None:
            self.timeframe = timeframe

    @property
    def ctx(self) -> StrategyContext:
        """The bound context."""
        if self._ctx is None:
            raise RuntimeError(f"strategy {self.name} is not bound to a trading node")
        return self._ctx

    def register_indicator(self, indicator: IndicatorT, timeframe: str | Timeframe | None = None) -> IndicatorT:
        """Have ``indicator`` updated with each closed bar before :meth:`on_bar`; returns it for chaining.

        ``timeframe``: the bars that update it, one registered with :meth:`subscribe_bars` (default: the strategy's
        own timeframe).

        Raises:
            ConfigError: a malformed timeframe.
        """
        if timeframe is None:
            self._indicators.append(indicator)
        else:
            self._extra_indicators.setdefault(_timeframe(timeframe, self.name), []).append(indicator)
        return indicator

    def subscribe_bars(self, timeframe: str | Timeframe, handler: Callable[[Bar], None] | None = None) -> Timeframe:
        """Also receive the strategy symbol's bars of ``timeframe`` (call it in ``__init__`` or :meth:`on_start`).

        Each closed bar of that timeframe first updates the indicators registered for it, then goes to ``handler``,
        or to :meth:`on_bar` when none is given (``bar.timeframe`` says which timeframe it is). Subscribing the same
        timeframe again replaces the handler. Returns the parsed timeframe.

        Raises:
            ConfigError: a malformed timeframe; from the node, a timeframe finer than the data.
        """
        tf = _timeframe(timeframe, self.name)
        self._extra_bars[tf] = handler
        return tf

    @property
    def bar_subscriptions(self) -> dict[Timeframe, Callable[[Bar], None]]:
        """The extra timeframes (:meth:`subscribe_bars`) and, for each, the callable the node delivers its bars to
        (indicators of that timeframe, then the handler or :meth:`on_bar`)."""
        return {tf: self._extra_handler(tf, h) for tf, h in self._extra_bars.items()}

    def _extra_handler(self, tf: Timeframe, handler: Callable[[Bar], None] | None) -> Callable[[Bar], None]:
        target = handler if handler is not None else self.on_bar
        indicators = self._extra_indicators.setdefault(tf, [])

        def deliver(bar: Bar) -> None:
            for ind in indicators:
                ind.handle_bar(bar)
            target(bar)

        return deliver

    def handle_bar(self, bar: Bar) -> None:
        """Called by the node for each closed bar: update the indicators, then :meth:`on_bar`."""
        for ind in self._indicators:
            ind.handle_bar(bar)
        self.on_bar(bar)

    # --- life cycle (override) ------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Once, before the first market data."""

    def on_bar(self, bar: Bar) -> None:
        """Each closed bar of the strategy's symbol and timeframe."""

    def on_quote(self, quote: QuoteTick) -> None:
        """Each quote of the strategy's symbol (when the node streams quotes)."""

    def on_trade(self, trade: TradeTick) -> None:
        """Each trade print of the strategy's symbol (when the node streams trades)."""

    def on_order_event(self, event: OrderEvent) -> None:
        """Each event of an order this strategy placed."""

    def on_position_changed(self, change: StrategyPositionChange) -> None:
        """After each change of this strategy's position (contracts: ``change.signed_qty`` after,
        ``change.previous_qty`` before), with its ``change.cause``: OWN_FILL, BRACKET_CHILD, RISK_FLATTEN (tag
        ``risk:<RULE>`` in ``change.source_tag``), MANUAL or RECONCILE. By then the node has already shrunk the
        strategy's bracket children to the new position for a change it did not cause."""

    def on_stop(self) -> None:
        """Once, after the last market data (or on shutdown)."""

    def on_params_changed(self, old: StrategyConfig, new: StrategyConfig) -> None:
        """After the desk changed the strategy's parameters (``propdesk.node.desk``, ``UpdateStrategyParams``):
        :attr:`config` is already ``new``; called on the core's thread between two events, never during one.

        The default does nothing: the helpers (``buy``, ``sell``, ``bracket`` ...) and a strategy that reads
        ``self.config`` when it acts pick up live-changeable fields by themselves. A strategy that copied a
        parameter into its own state (an indicator built with a period, a threshold cached in ``__init__``)
        overrides this to rebuild that state; a non-live field is only changed while the strategy is stopped.
        """

    # --- helpers --------------------------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """This strategy's signed position in its symbol (contracts)."""
        return self.ctx.position_qty(self.symbol, self.tag)

    def buy(self, qty: int | None = None) -> Order:
        """Market buy ``qty`` (default: the configured quantity)."""
        return self.ctx.market(self.symbol, Side.BUY, qty or self.config.qty, self.tag)

    def sell(self, qty: int | None = None) -> Order:
        """Market sell ``qty`` (default: the configured quantity)."""
        return self.ctx.market(self.symbol, Side.SELL, qty or self.config.qty, self.tag)

    def buy_limit(self, price: Price, qty: int | None = None) -> Order:
        """Limit buy at ``price``."""
        return self.ctx.limit(self.symbol, Side.BUY, qty or self.config.qty, price, self.tag)

    def sell_limit(self, price: Price, qty: int | None = None) -> Order:
        """Limit sell at ``price``."""
        return self.ctx.limit(self.symbol, Side.SELL, qty or self.config.qty, price, self.tag)

    def buy_stop(self, price: Price, qty: int | None = None) -> Order:
        """Stop-market buy at ``price``."""
        return self.ctx.stop(self.symbol, Side.BUY, qty or self.config.qty, price, self.tag)

    def sell_stop(self, price: Price, qty: int | None = None) -> Order:
        """Stop-market sell at ``price``."""
        return self.ctx.stop(self.symbol, Side.SELL, qty or self.config.qty, price, self.tag)

    def bracket(
        self,
        side: Side,
        *,
        stop_loss_ticks: int | None,
        take_profit_ticks: int | None,
        qty: int | None = None,
        entry_price: Price | None = None,
    ) -> Order:
        """Enter on ``side`` with stop-loss and take-profit children ``*_ticks`` away from the fill."""
        return self.ctx.bracket(
            self.symbol,
            side,
            qty or self.config.qty,
            self.tag,
            stop_loss_ticks=stop_loss_ticks,
            take_profit_ticks=take_profit_ticks,
            entry_price=entry_price,
        )

    def close(self) -> None:
        """Close this strategy's position at market and cancel its working orders."""
        self.ctx.close_position(self.symbol, self.tag)

    def price_on_tick(self, price: float) -> Price:
        """``price`` (points) rounded to the nearest tick of the strategy's contract."""
        return Price.of(price).round_to_tick(self.ctx.tick_size(self.symbol))


def live_fields(config_cls: type[StrategyConfig]) -> frozenset[str]:
    """The names of ``config_cls``'s fields marked live-changeable (``json_schema_extra={"live": True}``)."""
    out: set[str] = set()
    for name, info in config_cls.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get(LIVE_KEY) is True:
            out.add(name)
    return frozenset(out)


def config_schema(config_cls: type[StrategyConfig]) -> dict[str, Any]:
    """``config_cls``'s pydantic JSON Schema (mode ``validation``) with ``"live": true|false`` on every property.

    Shape: ``{"title", "description", "type": "object", "properties": {field: {"type", "default", "description",
    "live", ...}}, "additionalProperties": false, ...}`` (nested types under ``$defs``).
    """
    schema = config_cls.model_json_schema()
    live = live_fields(config_cls)
    props = schema.get("properties", {})
    for name, prop in props.items():
        if isinstance(prop, dict):
            prop[LIVE_KEY] = name in live
    return schema


def _timeframe(value: str | Timeframe, strategy: str) -> Timeframe:
    """``value`` as a :class:`Timeframe`; a malformed string raises :class:`ConfigError` naming the strategy."""
    if isinstance(value, Timeframe):
        return value
    try:
        return Timeframe.parse(value)
    except ValueError as exc:
        raise ConfigError(f"strategy {strategy}: {exc}") from None
