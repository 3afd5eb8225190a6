"""``mean_reversion``: fade a stretched close back toward the session VWAP, with an ATR stop.

Indicators (updated with each closed bar before the rules run): Bollinger bands of the close (``bb_period``,
``bb_std`` population standard deviations, TA-Lib's BBANDS), Wilder's RSI of the close (``rsi_period``), Wilder's
ATR (``atr_period``) and the session VWAP of the typical price, anchored at 17:00 America/Chicago
(:class:`~propdesk.data.indicators.vwap.SessionVWAP`). The band-and-oscillator fade is the classic use of both
(John Bollinger, *Bollinger on Bollinger Bands*, 2001, ch. 21; J. Welles Wilder, *New Concepts in Technical Trading
Systems*, 1978, for RSI and ATR).

Rules, on each closed bar once every indicator is defined, when flat and with no entry order still open:

* **Short** when ``close > upper band`` and ``RSI >= rsi_overbought`` and the VWAP is below the close;
  **long** when ``close < lower band`` and ``RSI <= rsi_oversold`` and the VWAP is above the close.
* **Stop-loss** ``ceil(atr_stop_mult x ATR / tick size)`` ticks from the fill (at least 1).
* **Take-profit**: with ``target="vwap"``, ``floor(|close - VWAP| / tick size)`` ticks (the distance to the VWAP at
  the signal, rounded toward the entry so the target is not beyond the VWAP); with ``target="ticks"``,
  ``take_profit_ticks``. A VWAP target nearer than ``min_target_ticks`` skips the trade (not worth the costs).
* The entry is a market bracket (:meth:`~propdesk.strategies.base.StrategyContext.bracket`); the exits are its
  children. Tick distances are measured from the fill, which in a backtest is the next bar's open.

The strategy has no clock rule of its own: the risk engine flattens before the firm's flat time. Its position is the
position manager's (the risk engine's close at the flat time, a close typed into the broker's UI, a reconciled fill
all leave it flat), so it enters again on the next signal once the lockout has lifted; after such a change an entry
still working is canceled (it was sent for a position that is gone) and the node has already shrunk the bracket's
children to what is held.

Parameters (``--param k=v``; plus :class:`~propdesk.strategies.base.StrategyConfig`'s), defaults for ES 1-minute:
``bb_period`` (int >= 2, 20), ``bb_std`` (> 0, 2.0), ``rsi_period`` (int >= 1, 14), ``rsi_overbought`` (0-100, 70),
``rsi_oversold`` (0-100, 30, below ``rsi_overbought``), ``atr_period`` (int >= 1, 14), ``atr_stop_mult`` (> 0, 2.0),
``target`` (``vwap`` | ``ticks``, ``vwap``), ``take_profit_ticks`` (int >= 1, 16), ``min_target_ticks`` (int >= 1, 4).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic.config import JsonDict

from propdesk.data.indicators.momentum import RSI
from propdesk.data.indicators.volatility import ATR, Bollinger
from propdesk.data.indicators.vwap import SessionVWAP
from propdesk.model.data import Bar
from propdesk.model.enums import Side
from propdesk.model.orders import Order
from propdesk.model.positions import StrategyPositionChange
from propdesk.strategies.base import LIVE_KEY, Strategy, StrategyConfig

_LIVE: JsonDict = {LIVE_KEY: True}  # json_schema_extra of a live-changeable parameter (strategies.base)


class MeanReversionConfig(StrategyConfig):
    """Parameters of :class:`MeanReversion` (see the module docstring).

    Raises:
        pydantic.ValidationError (a ConfigError naming the field through ``from_params``): a value out of range, or
            ``rsi_oversold >= rsi_overbought``.
    """

    bb_period: int = Field(default=20, ge=2, description="bars in the Bollinger bands of the close")
    bb_std: float = Field(
        default=2.0, gt=0, allow_inf_nan=False, description="Bollinger band width, population standard deviations"
    )
    rsi_period: int = Field(default=14, ge=1, description="bars in Wilder's RSI of the close")
    rsi_overbought: float = Field(
        default=70.0,
        ge=0,
        le=100,
        description="RSI (0-100) at or above which a short may enter",
        json_schema_extra=_LIVE,
    )
    rsi_oversold: float = Field(
        default=30.0,
        ge=0,
        le=100,
        description="RSI (0-100) at or below which a long may enter",
        json_schema_extra=_LIVE,
    )
    atr_period: int = Field(default=14, ge=1, description="bars in Wilder's ATR")
    atr_stop_mult: float = Field(
        default=2.0,
        gt=0,
        allow_inf_nan=False,
        description="stop-loss distance, multiples of the ATR",
        json_schema_extra=_LIVE,
    )
    target: Literal["vwap", "ticks"] = Field(
        default="vwap",
        description="take-profit at the session VWAP or take_profit_ticks from the fill",
        json_schema_extra=_LIVE,
    )
    take_profit_ticks: int = Field(
        default=16, ge=1, description="take-profit distance with target=ticks, ticks", json_schema_extra=_LIVE
    )
    min_target_ticks: int = Field(
        default=4, ge=1, description="skip a VWAP target nearer than this, ticks", json_schema_extra=_LIVE
    )

    @model_validator(mode="after")
    def _levels(self) -> MeanReversionConfig:
        if self.rsi_oversold >= self.rsi_overbought:
            raise ValueError(f"rsi_oversold ({self.rsi_oversold}) must be below rsi_overbought ({self.rsi_overbought})")
        return self


class MeanReversion(Strategy):
    """Bollinger/RSI fade toward the session VWAP with an ATR stop (see the module docstring).

    Attributes:
        bands, rsi, atr, vwap: the indicators.
        last_signal: ``(side, stop_loss_ticks, take_profit_ticks)`` of the last entry sent, or ``None``.
    """

    name: ClassVar[str] = "mean_reversion"
    config_cls: ClassVar[type[StrategyConfig]] = MeanReversionConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        assert isinstance(cfg, MeanReversionConfig)
        self.cfg = cfg
        self.bands = Bollinger(cfg.bb_period, cfg.bb_std, cfg.bb_std)
        self.rsi = RSI(cfg.rsi_period)
        self.atr = ATR(cfg.atr_period)
        self.vwap = SessionVWAP()
        for ind in (self.bands, self.rsi, self.atr, self.vwap):
            self.register_indicator(ind)
        self.last_signal: tuple[Side, int, int] | None = None
        self._entry: Order | None = None

    def on_bar(self, bar: Bar) -> None:
        """Enter a fade when the close is beyond a band with RSI confirming and the VWAP on the other side."""
        bands, rsi, atr, vwap = self.bands, self.rsi, self.atr, self.vwap
        if not (bands.ready and rsi.ready and atr.ready and vwap.ready):
            return
        cfg = self.cfg
        close = bar.close
        if close > bands.upper and rsi.value >= cfg.rsi_overbought and vwap.value < close:
            side = Side.SELL
        elif close < bands.lower and rsi.value <= cfg.rsi_oversold and vwap.value > close:
            side = Side.BUY
        else:
            return
        if self._entry is not None and self._entry.is_open:
            return
        if self.position != 0:
            return
        tick = float(self.ctx.tick_size(self.symbol))
        stop_ticks = max(1, math.ceil(cfg.atr_stop_mult * atr.value / tick - 1e-9))
        if cfg.target == "vwap":
            target_ticks = math.floor(abs(close - vwap.value) / tick + 1e-9)
            if target_ticks < cfg.min_target_ticks:
                return
        else:
            target_ticks = cfg.take_profit_ticks
        self.last_signal = (side, stop_ticks, target_ticks)
        self._entry = self.bracket(side, stop_loss_ticks=stop_ticks, take_profit_ticks=target_ticks)

    def on_position_changed(self, change: StrategyPositionChange) -> None:
        """After a change it did not cause (a risk flatten, a manual close, a reconciled fill) that left it flat,
        cancel an entry still working and forget it: the next signal enters afresh."""
        if change.cause.outside and change.is_flat:
            entry = self._entry
            self._entry = None
            if entry is not None and entry.is_open:
                self.ctx.cancel(entry)
