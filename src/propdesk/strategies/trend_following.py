"""``trend_following``: EMA-crossover or Donchian-breakout entries, long and short, with an ATR trailing stop.

Entry signals (``entry`` parameter), on each closed bar once the indicators are defined:

* ``ema``: the trend is the sign of ``EMA(fast) - EMA(slow)`` of the close (TA-Lib's EMA); a signal is a change of
  that sign from the previous bar (equal EMAs keep the previous trend). Up: long; down: short.
* ``donchian``: a close above the highest high of the ``donchian_period`` bars *before* this one is a long signal, a
  close below their lowest low a short signal (Richard Donchian's channel breakout; the "Turtle" rule,
  Curtis Faith, *Way of the Turtle*, 2007, ch. 5).

Position rules:

* Flat, no entry order open, and a signal: enter ``qty`` at market (a short only if ``allow_short``).
* In a position and a signal against it: cancel the stop and reverse with one market order of ``|position| + qty``
  contracts (one order, so the position never passes through a state with a stop for the wrong side). With
  ``allow_short`` false a down signal only closes a long (``close``). A signal in the position's direction is
  ignored.
* **Trailing stop (chandelier exit, Chuck LeBeau):** when the entry's first contracts fill, a stop-market order is
  placed ``atr_mult x ATR`` from the position's average price (on the tick, rounded away from the market, i.e. down
  for a long's sell stop and up for a short's buy stop). After every change of the position, whoever caused it
  (a further fill of the entry, a partial close by the risk engine, a manual trade, a reconciled fill), the stop's
  open quantity is set to the open position. On each later bar the extreme since entry (highest high for a long,
  lowest low for a short) is updated and the stop candidate is ``extreme - atr_mult x ATR`` (long) or
  ``extreme + atr_mult x ATR`` (short), rounded the same way. The stop only ratchets toward the market: it is
  modified (:meth:`~propdesk.strategies.base.StrategyContext.modify`) when the candidate is at least one tick better,
  never loosened.
* When the position returns to flat (the stop filled, or anything else closed it) the stop state is cleared; a stop
  still working is canceled, and the strategy enters again on its next signal.
* A change the strategy did not cause while an entry is still working (a flatten, a manual close) cancels that
  entry: it was sized for a position that no longer exists, and the next signal enters afresh. So the position never
  exceeds ``qty`` contracts.

The position (size and average price) is always the position manager's, as attributed to the strategy's tag
(:class:`~propdesk.model.positions.StrategyPositionChange`), never a count of the strategy's own fills.

The strategy keeps its stop as a plain stop order (not the broker's trailing type) so the trail is the same in a
backtest and live. It has no clock rule: the risk engine flattens before the firm's flat time.

Parameters (``--param k=v``; plus :class:`~propdesk.strategies.base.StrategyConfig`'s), defaults for ES 1-minute:
``entry`` (``ema`` | ``donchian``, ``ema``), ``fast`` (int >= 1, 20) and ``slow`` (int > ``fast``, 50) EMA periods,
``donchian_period`` (int >= 1, 20), ``atr_period`` (int >= 1, 14), ``atr_mult`` (> 0, 3.0),
``allow_short`` (bool, true).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic.config import JsonDict

from propdesk.data.indicators.moving_averages import EMA
from propdesk.data.indicators.volatility import ATR, Donchian
from propdesk.model.data import Bar
from propdesk.model.events import OrderCanceled, OrderEvent, OrderExpired, OrderRejected
from propdesk.model.orders import Order
from propdesk.model.positions import StrategyPositionChange
from propdesk.model.price import Price
from propdesk.strategies.base import LIVE_KEY, Strategy, StrategyConfig

_EPS = 1e-9  # tolerance (in ticks) when rounding float distances onto the tick grid


_LIVE: JsonDict = {LIVE_KEY: True}  # json_schema_extra of a live-changeable parameter (strategies.base)


class TrendFollowingConfig(StrategyConfig):
    """Parameters of :class:`TrendFollowing` (see the module docstring).

    Raises:
        pydantic.ValidationError (a ConfigError naming the field through ``from_params``): a value out of range, an
            unknown ``entry``, or ``slow <= fast``.
    """

    entry: Literal["ema", "donchian"] = Field(default="ema", description="entry signal: EMA cross or Donchian breakout")
    fast: int = Field(default=20, ge=1, description="bars in the fast EMA of the close")
    slow: int = Field(default=50, ge=2, description="bars in the slow EMA of the close (> fast)")
    donchian_period: int = Field(default=20, ge=1, description="bars in the Donchian channel")
    atr_period: int = Field(default=14, ge=1, description="bars in Wilder's ATR")
    atr_mult: float = Field(
        default=3.0,
        gt=0,
        allow_inf_nan=False,
        description="trailing stop distance, multiples of the ATR",
        json_schema_extra=_LIVE,
    )
    allow_short: bool = Field(default=True, description="take short entries too", json_schema_extra=_LIVE)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> TrendFollowingConfig:
        if self.slow <= self.fast:
            raise ValueError(f"slow ({self.slow}) must be greater than fast ({self.fast})")
        return self


class TrendFollowing(Strategy):
    """Trend entries (EMA cross or Donchian breakout) with a ratcheting ATR stop (see the module docstring).

    Attributes:
        direction: the side of the position the strategy manages: +1 long, -1 short, 0 none.
        stop_order: the working stop-market order, or ``None``.
        stop_price: its price (``None`` with no stop).
        extreme: the highest high (long) or lowest low (short) since entry (points).
    """

    name: ClassVar[str] = "trend_following"
    config_cls: ClassVar[type[StrategyConfig]] = TrendFollowingConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        assert isinstance(cfg, TrendFollowingConfig)
        self.cfg = cfg
        self.atr = ATR(cfg.atr_period)
        self.register_indicator(self.atr)
        self.fast_ema: EMA | None = None
        self.slow_ema: EMA | None = None
        self.channel: Donchian | None = None
        if cfg.entry == "ema":
            self.fast_ema = EMA(cfg.fast)
            self.slow_ema = EMA(cfg.slow)
            self.register_indicator(self.fast_ema)
            self.register_indicator(self.slow_ema)
        else:
            self.channel = Donchian(cfg.donchian_period)  # updated by handle_bar, after reading the previous channel
        self._trend = 0  # EMA mode: sign of fast - slow on the previous bar (0 before the first)
        self._prev_upper = math.nan  # Donchian mode: the channel of the bars before the current one
        self._prev_lower = math.nan
        self.direction = 0
        self.stop_order: Order | None = None
        self.stop_price: Price | None = None
        self.extreme = math.nan
        self._entry: Order | None = None
        self._avg_price: Price | None = None  # the position's average price, from the last position change

    def handle_bar(self, bar: Bar) -> None:
        """Update the indicators, then :meth:`on_bar`; in Donchian mode the channel is read before this bar enters."""
        ch = self.channel
        if ch is not None:
            self._prev_upper = ch.upper
            self._prev_lower = ch.lower
            ch.handle_bar(bar)
        super().handle_bar(bar)

    # --- signals --------------------------------------------------------------------------------------------------

    def _signal(self, bar: Bar) -> int:
        if self.fast_ema is not None and self.slow_ema is not None:
            if not self.slow_ema.ready:
                return 0
            f, s = self.fast_ema.value, self.slow_ema.value
            trend = 1 if f > s else (-1 if f < s else self._trend)
            prev = self._trend
            self._trend = trend
            return trend if prev not in (0, trend) else 0
        up, lo = self._prev_upper, self._prev_lower
        if math.isnan(up):
            return 0
        if bar.close > up:
            return 1
        if bar.close < lo:
            return -1
        return 0

    def on_bar(self, bar: Bar) -> None:
        """Ratchet the stop of an open position, then act on the entry signal."""
        if self.stop_order is not None:
            self._trail(bar)
        sig = self._signal(bar)
        if sig == 0 or not self.atr.ready:
            return
        if self._entry is not None and self._entry.is_open:
            return
        pos = self.position
        if pos * sig > 0:
            return
        if sig < 0 and not self.cfg.allow_short:
            if pos > 0:
                self.close()  # exit the long (cancels its stop); no short
                self._clear_stop()
                self.direction = 0
            return
        stop = self.stop_order
        if stop is not None and stop.is_open:
            self.ctx.cancel(stop)
        self._clear_stop()
        self.direction = sig
        qty = abs(pos) + self.cfg.qty  # a reversal is one order: close |pos| and open qty
        self._entry = self.buy(qty) if sig > 0 else self.sell(qty)

    # --- the trailing stop ----------------------------------------------------------------------------------------

    def _stop_for(self, anchor: float) -> Price:
        tick = self.ctx.tick_size(self.symbol)
        t = float(tick)
        dist = self.cfg.atr_mult * self.atr.value
        n = math.floor((anchor - dist) / t + _EPS) if self.direction > 0 else math.ceil((anchor + dist) / t - _EPS)
        return Price.from_ticks(n, tick)

    def _trail(self, bar: Bar) -> None:
        stop = self.stop_order
        if stop is None or self.stop_price is None:
            return
        if stop.is_done:
            self._clear_stop()
            return
        if self.direction > 0:
            if bar.high > self.extreme:
                self.extreme = bar.high
            new = self._stop_for(self.extreme)
            better = new > self.stop_price
        else:
            if bar.low < self.extreme:
                self.extreme = bar.low
            new = self._stop_for(self.extreme)
            better = new < self.stop_price
        if better:
            self.stop_price = new
            self.ctx.modify(stop, price=new)

    def _sync_stop(self, avg_price: Price | None) -> None:
        """Make the stop cover the open position exactly: place it (from ``avg_price``, the position's average price)
        when there is none, set its open quantity to the position's otherwise, cancel it when flat."""
        pos = self.position
        stop = self.stop_order
        if pos == 0:
            if stop is not None and stop.is_open:
                self.ctx.cancel(stop)
            self._clear_stop()
            return
        side = 1 if pos > 0 else -1
        if side != self.direction:
            if self._entry is not None and self._entry.is_open:
                return  # a reversal under way still holds the old side: its stop was canceled on purpose
            if stop is not None and stop.is_open:
                self.ctx.cancel(stop)
            self._clear_stop()
            self.direction = side  # a position the strategy did not open (reconciled): protect it all the same
            stop = None
        want = abs(pos)
        if stop is not None and stop.is_open:
            if stop.qty - stop.filled_qty != want:
                self.ctx.modify(stop, qty=stop.filled_qty + want)
            return
        if avg_price is None:
            return
        anchor = float(avg_price)
        self.extreme = anchor
        price = self._stop_for(anchor)
        self.stop_price = price
        self.stop_order = self.sell_stop(price, want) if side > 0 else self.buy_stop(price, want)

    def _clear_stop(self) -> None:
        self.stop_order = None
        self.stop_price = None
        self.extreme = math.nan

    # --- events ---------------------------------------------------------------------------------------------------

    def on_order_event(self, event: OrderEvent) -> None:
        """Forget the entry once it is done and the stop once it ended unfilled (the stop itself is sized in
        :meth:`on_position_changed`, which sees every fill first)."""
        cid = event.client_order_id
        entry = self._entry
        if entry is not None and cid == entry.client_order_id:
            if entry.is_done:
                self._entry = None
                if self.position == 0:
                    self.direction = 0  # the entry ended without a position
                else:
                    self._sync_stop(self._avg_price)  # e.g. a reversal denied: protect the side still held
        elif (
            self.stop_order is not None
            and cid == self.stop_order.client_order_id
            and isinstance(event, OrderCanceled | OrderRejected | OrderExpired)
        ):
            self._clear_stop()

    def on_position_changed(self, change: StrategyPositionChange) -> None:
        """Keep the stop equal to the position after every change; after a change the strategy did not cause,
        cancel a working entry (re-armed: the next signal enters afresh); when flat, clear the stop state."""
        self._avg_price = change.avg_price
        if change.cause.outside:
            entry = self._entry
            if entry is not None and entry.is_open:
                self.ctx.cancel(entry)
                self._entry = None
        self._sync_stop(change.avg_price)
        if change.signed_qty == 0 and (self._entry is None or not self._entry.is_open):
            self.direction = 0
