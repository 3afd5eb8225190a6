"""``overnight_range``: trade the breakout of the overnight (Globex) range after the regular-hours open.

Sessions (CME equity-index futures, https://www.cmegroup.com/trading-hours.html): the trading day opens at 17:00
America/Chicago (18:00 New York) the evening before and the regular trading hours (RTH) open at 08:30 CT. Times are
wall-clock times in ``tz`` converted with :mod:`zoneinfo` on each date, so DST changes are handled by the tz data.

Rules, on each closed bar (a bar is attributed to the trading day whose session contains its open time):

1. **Overnight range.** Bars opening in ``[session open, rth_open)`` extend the overnight high and low.
2. **Entry.** A bar that opens at or after ``rth_open`` and closes no later than ``last_entry`` is a breakout when its
   close is above ``high + buffer_ticks`` ticks (long) or below ``low - buffer_ticks`` ticks (short). The strategy
   then enters at market with a bracket: a stop-loss ``stop_loss_ticks`` and a take-profit ``take_profit_ticks``
   from the fill (the context's :meth:`~propdesk.strategies.base.StrategyContext.bracket`). Only when flat and with
   no entry order still open, and at most ``max_trades_per_day`` entries per trading day (every entry sent counts,
   even one the risk gate denies: a denied entry is not retried). No overnight bar, no trade that day.
3. **Flat by the cut-off.** On the first bar that closes at or after ``cutoff`` (and on every later bar of the day
   while a position remains) the strategy closes its position and cancels its working orders. The default 15:00 CT
   leaves ten minutes before Topstep's 15:10 CT flat time (https://help.topstep.com/, "Trading hours"). A position
   still open when a new trading day's first bar arrives (an early close left no bar after the cut-off) is closed
   then.

The position is the position manager's: a flatten by the risk engine, a close typed into the broker's UI or a
reconciled fill leaves the strategy flat, so it never sends a "close" for a position it no longer holds; after such
a change an entry still working is canceled. Entries re-arm with the next trading day (``max_trades_per_day``).

Parameters (``--param k=v``; plus :class:`~propdesk.strategies.base.StrategyConfig`'s):

* ``tz`` (IANA zone, default ``America/Chicago``): the zone of every time below;
* ``session_open`` (time, default 17:00): when the trading day (and the overnight range) starts;
* ``rth_open`` (time, default 08:30): when the overnight range ends and entries may start;
* ``last_entry`` (time, default 14:00): no entry on a bar closing after it;
* ``cutoff`` (time, default 15:00): be flat from this time;
* ``stop_loss_ticks`` (int >= 1, default 16 = 4 ES points), ``take_profit_ticks`` (int >= 1, default 32);
* ``buffer_ticks`` (int >= 0, default 0): how far beyond the range the close must be;
* ``max_trades_per_day`` (int >= 1, default 1).

Times must be ordered ``rth_open < last_entry <= cutoff`` on the trading day's clock, with ``session_open`` after
``cutoff`` (the evening before).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic.config import JsonDict

from propdesk.model.calendar import EXCHANGE_TZ, SESSION_OPEN
from propdesk.model.data import Bar
from propdesk.model.enums import Side
from propdesk.model.orders import Order
from propdesk.model.positions import StrategyPositionChange
from propdesk.strategies.base import LIVE_KEY, Strategy, StrategyConfig

_LIVE: JsonDict = {LIVE_KEY: True}  # json_schema_extra of a live-changeable parameter (strategies.base)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def local_ns(day: date, at: time, zone: ZoneInfo) -> int:
    """UTC ns of the wall-clock time ``at`` on ``day`` in ``zone`` (DST-correct for that date)."""
    return ((datetime.combine(day, at, tzinfo=zone) - _EPOCH) // timedelta(microseconds=1)) * 1000


def trading_day(ts_ns: int, session_open: time, zone: ZoneInfo) -> date:
    """The trading day of a time (UTC ns): the local date, plus one day from ``session_open`` on."""
    local = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).astimezone(zone)
    d = local.date()
    return d + timedelta(days=1) if local.time() >= session_open else d


class OvernightRangeConfig(StrategyConfig):
    """Parameters of :class:`OvernightRange` (see the module docstring).

    Raises:
        pydantic.ValidationError (a ConfigError naming the field through ``from_params``): an unknown zone, a tick
            count out of range, or times out of order.
    """

    tz: str = Field(default=EXCHANGE_TZ, description="IANA time zone of every time below")
    session_open: time = Field(default=SESSION_OPEN, description="trading day (and overnight range) start, tz time")
    rth_open: time = Field(default=time(8, 30), description="overnight range end, entries from here, tz time")
    last_entry: time = Field(default=time(14, 0), description="no entry on a bar closing after it, tz time")
    cutoff: time = Field(default=time(15, 0), description="flat from this time, tz time")
    stop_loss_ticks: int = Field(
        default=16, ge=1, description="stop-loss from the fill, ticks", json_schema_extra=_LIVE
    )
    take_profit_ticks: int = Field(
        default=32, ge=1, description="take-profit from the fill, ticks", json_schema_extra=_LIVE
    )
    buffer_ticks: int = Field(
        default=0, ge=0, description="how far beyond the range the close must be, ticks", json_schema_extra=_LIVE
    )
    max_trades_per_day: int = Field(
        default=1, ge=1, description="entries per trading day (denied ones count)", json_schema_extra=_LIVE
    )

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as 'America/Chicago')") from None
        return v

    @model_validator(mode="after")
    def _ordered(self) -> OvernightRangeConfig:
        if not self.rth_open < self.last_entry <= self.cutoff < self.session_open:
            raise ValueError(
                f"times must satisfy rth_open ({self.rth_open}) < last_entry ({self.last_entry}) <= "
                f"cutoff ({self.cutoff}) < session_open ({self.session_open})"
            )
        return self


class OvernightRange(Strategy):
    """Overnight-range breakout after the RTH open, bracketed, flat by the cut-off (see the module docstring).

    Attributes:
        day: the current trading day (``None`` before the first bar).
        high, low: the overnight range so far (points; ``None`` until an overnight bar was seen).
        trades_today: entries sent this trading day.
    """

    name: ClassVar[str] = "overnight_range"
    config_cls: ClassVar[type[StrategyConfig]] = OvernightRangeConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        assert isinstance(cfg, OvernightRangeConfig)
        self.cfg = cfg
        self._zone = ZoneInfo(cfg.tz)
        self.day: date | None = None
        self.high: float | None = None
        self.low: float | None = None
        self.trades_today = 0
        self._day_end_ns = -1  # the next trading day's session open (UTC ns)
        self._rth_ns = 0
        self._last_entry_ns = 0
        self._cutoff_ns = 0
        self._entry: Order | None = None

    def _roll(self, ts_ns: int) -> None:
        cfg = self.cfg
        z = self._zone
        day = trading_day(ts_ns, cfg.session_open, z)
        self.day = day
        self._day_end_ns = local_ns(day, cfg.session_open, z)
        self._rth_ns = local_ns(day, cfg.rth_open, z)
        self._last_entry_ns = local_ns(day, cfg.last_entry, z)
        self._cutoff_ns = local_ns(day, cfg.cutoff, z)
        self.high = None
        self.low = None
        self.trades_today = 0

    def on_bar(self, bar: Bar) -> None:
        """Track the overnight range, enter on a close beyond it, be flat from the cut-off."""
        ts = bar.ts_open_ns
        if ts >= self._day_end_ns:
            first = self.day is None
            self._roll(ts)
            if not first and self.position != 0:
                self.close()  # an early close left no bar after the cut-off
        if ts < self._rth_ns:
            if self.high is None or bar.high > self.high:
                self.high = bar.high
            if self.low is None or bar.low < self.low:
                self.low = bar.low
            return
        if bar.ts_close_ns >= self._cutoff_ns:
            if self.position != 0 or (self._entry is not None and self._entry.is_open):
                self.close()
            return
        if bar.ts_close_ns > self._last_entry_ns or self.high is None or self.low is None:
            return
        if self.trades_today >= self.cfg.max_trades_per_day:
            return
        if self._entry is not None and self._entry.is_open:
            return
        buffer = self.cfg.buffer_ticks * float(self.ctx.tick_size(self.symbol))
        close = bar.close
        if close > self.high + buffer:
            side = Side.BUY
        elif close < self.low - buffer:
            side = Side.SELL
        else:
            return
        if self.position != 0:
            return
        self.trades_today += 1
        self._entry = self.bracket(
            side, stop_loss_ticks=self.cfg.stop_loss_ticks, take_profit_ticks=self.cfg.take_profit_ticks
        )

    def on_position_changed(self, change: StrategyPositionChange) -> None:
        """After a change it did not cause (a risk flatten, a manual close, a reconciled fill) that left it flat,
        cancel an entry still working and forget it."""
        if change.cause.outside and change.is_flat:
            entry = self._entry
            self._entry = None
            if entry is not None and entry.is_open:
                self.ctx.cancel(entry)
