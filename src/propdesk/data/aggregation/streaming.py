"""Streaming time-bar aggregation: trade prints or finer bars in, bars out through a callback.

Design after NautilusTrader's ``TimeBarAggregator`` options (explicit empty-bar and partial-first-bar handling,
clock-driven close); the code is propdesk's own.

Rules every aggregator here follows:

* **Exchange time only.** A print is placed by ``ts_event_ns`` (UTC ns); receive time is never used.
* **Bars** follow a :class:`~propdesk.data.aggregation.schedule.BarSchedule`: ``s``/``m``/``h`` bars on the UTC epoch
  grid (shifted by ``origin_ns``), cut at CME session boundaries when ``session_aligned=True`` (16:00 CT halt/close,
  17:00 CT open; ``anchor="session"`` restarts the grid at each of them); ``1d`` bars are CME sessions (17:00 CT).
* **Nothing is dropped.** Every print and every contract ends up in exactly one bar: emitted, withheld by
  ``skip_first_partial`` (counted in :attr:`TimeBarAggregator.withheld_volume` and friends), or still open (see
  :meth:`TimeBarAggregator.flush`). So ``sum(emitted volume) + withheld_volume + open volume == sum(sizes)`` and the
  same for print counts, always.
* **Late prints** (``ts_event_ns`` before the open bar's start, or before the end of the last emitted bar) are not
  dropped: they are folded into the open bar, updating its high, low and volume but not its open or close (which
  are the first and last prints in time), and counted in :attr:`TimeBarAggregator.late_ticks`. When no bar is open,
  a late print opens the bar that starts where the last emitted bar ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NoReturn

from propdesk.core.errors import DataError
from propdesk.data.aggregation.schedule import Anchor, BarSchedule, make_schedule
from propdesk.data.aggregation.sessions import CmeSessions
from propdesk.model.data import Bar, Timeframe, TradeTick

_NO_START: Final[int] = 2**63 - 1
_NO_END: Final[int] = -(2**63)


class TimeBarAggregator:
    """Build time bars of one symbol and timeframe from trade prints (or finer bars), emitting each through ``on_bar``.

    Args:
        symbol: the contract symbol stamped on every bar (e.g. ``"ESM8"``).
        timeframe: the bar interval; ``s``/``m``/``h`` any step, ``d`` only ``1d`` (one bar per CME session).
        on_bar: called with every emitted :class:`~propdesk.model.data.Bar`, in time order, synchronously.
        emit_empty: when time passes whole bars without prints (seen from the next print or from :meth:`on_time`),
            emit them as empty bars: open = high = low = close = the previous bar's close, volume 0. Never before
            the first bar.
        skip_first_partial: withhold the first bar when its first print came after the bar's start
            (``ts_event_ns > ts_open_ns``), i.e. the aggregator did not see the whole bar. The withheld bar's
            prints and volume are counted in :attr:`withheld_bars`, :attr:`withheld_ticks`, :attr:`withheld_volume`.
        session_aligned: cut intraday bars at CME session boundaries (16:00 CT halt or Friday close, 17:00 CT open),
            so no bar spans a halt. It changes nothing for 1m-1h bars on the epoch grid (they already end there).
        anchor: ``"epoch"`` (bars at ``origin_ns + k * step``, UTC) or ``"session"`` (the grid restarts at every
            session boundary, e.g. 4h bars at 17:00, 21:00, 01:00 CT; needs ``session_aligned=True``).
        origin_ns: origin of the epoch grid (UTC ns); 0 = the Unix epoch.
        sessions: the CME session calendar (holidays); default weekends only.

    Feeding: :meth:`handle_trade` (hot path, plain arguments), :meth:`handle_trade_tick`, :meth:`handle_bar` (finer
    bars, e.g. 1-minute bars into 5-minute bars). Closing: a bar is emitted when a print or bar at or after its end
    arrives, when :meth:`on_time` is called with a time at or after its end (clock-driven close, for live use), and
    by :meth:`flush` (end of data: the open bar is emitted as it is).

    Raises:
        ValueError: from the constructor for an invalid option combination (see :func:`make_schedule`).
        DataError: from :meth:`handle_trade_tick`/:meth:`handle_bar` for another symbol, a bar not finer than the
            timeframe, or a bar that straddles this timeframe's bar boundary.
    """

    __slots__ = (
        "_bar_open_ns",
        "_close",
        "_count",
        "_emitted_bars",
        "_emitted_ticks",
        "_emitted_volume",
        "_empty_bars",
        "_end",
        "_fine_tf",
        "_first_partial",
        "_first_pending",
        "_high",
        "_last_close",
        "_late_ticks",
        "_low",
        "_off_session_ticks",
        "_open",
        "_schedule",
        "_start",
        "_volume",
        "_watermark",
        "_withheld_bars",
        "_withheld_ticks",
        "_withheld_volume",
        "emit_empty",
        "on_bar",
        "skip_first_partial",
        "symbol",
        "timeframe",
    )

    def __init__(
        self,
        symbol: str,
        timeframe: Timeframe,
        on_bar: Callable[[Bar], None],
        *,
        emit_empty: bool = False,
        skip_first_partial: bool = False,
        session_aligned: bool = True,
        anchor: Anchor = "epoch",
        origin_ns: int = 0,
        sessions: CmeSessions | None = None,
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.on_bar = on_bar
        self.emit_empty = emit_empty
        self.skip_first_partial = skip_first_partial
        self._schedule: BarSchedule = make_schedule(
            timeframe, session_aligned=session_aligned, anchor=anchor, origin_ns=origin_ns, sessions=sessions
        )
        self._start = _NO_START
        self._end = _NO_END
        self._bar_open_ns = 0
        self._open = self._high = self._low = self._close = 0.0
        self._volume = 0
        self._count = 0
        self._watermark: int | None = None
        self._last_close = 0.0
        self._first_pending = True
        self._first_partial = False
        self._fine_tf: Timeframe | None = None
        self._emitted_bars = self._emitted_ticks = self._emitted_volume = self._empty_bars = 0
        self._withheld_bars = self._withheld_ticks = self._withheld_volume = 0
        self._late_ticks = self._off_session_ticks = 0

    # ------------------------------------------------------------------ hot path
    def handle_trade(self, price: float, size: int, ts_event_ns: int) -> None:
        """Add one print: ``price`` in points, ``size`` in contracts, ``ts_event_ns`` exchange time (UTC ns).

        Prints are expected in time order; a print earlier than the open bar is folded in (see module docstring).
        """
        if self._start <= ts_event_ns < self._end:
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
            self._close = price
            self._volume += size
            self._count += 1
            return
        self._roll(price, size, ts_event_ns)

    def _roll(self, price: float, size: int, ts: int) -> bool:
        """Slow path of :meth:`handle_trade`: late print, or a print at/after the open bar's end, or no bar open.

        Returns True when the print opened a new bar, False when it was folded into the open bar as a late print.
        """
        if self._start != _NO_START and ts < self._start:
            self._late_ticks += 1
            if price > self._high:
                self._high = price
            if price < self._low:
                self._low = price
            self._volume += size
            self._count += 1
            return False
        if self._start != _NO_START:
            self._close_bar()
        wm = self._watermark
        if wm is not None and ts < wm:
            self._late_ticks += 1
            ts_bar = wm
        else:
            ts_bar = ts
        start, end, bar_open = self._schedule.bounds(ts_bar)
        if self.emit_empty and wm is not None:
            self._emit_empty_until(start)
        if ts_bar == ts and ts < bar_open:
            self._off_session_ticks += 1
        if self._first_pending:
            self._first_partial = self.skip_first_partial and ts > bar_open
        self._start, self._end, self._bar_open_ns = start, end, bar_open
        self._open = self._high = self._low = self._close = price
        self._volume = size
        self._count = 1
        return True

    # ------------------------------------------------------------------ other inputs
    def handle_trade_tick(self, tick: TradeTick) -> None:
        """Add a :class:`~propdesk.model.data.TradeTick` (by its ``ts_event_ns``).

        Raises:
            DataError: if the tick's symbol is not this aggregator's.
        """
        if tick.symbol != self.symbol:
            raise DataError(f"trade for {tick.symbol!r} sent to the {self.symbol} {self.timeframe} bar aggregator")
        self.handle_trade(tick.price, tick.size, tick.ts_event_ns)

    def handle_bar(self, bar: Bar) -> None:
        """Add a finer bar (e.g. a 1-minute bar into 5-minute bars); volume is summed, O/H/L/C merged.

        The bar is placed by its ``ts_open_ns``. A volume-0 bar (an empty bar) carries no trades: it only advances
        the clock to its ``ts_close_ns``. After the bar is added, :meth:`on_time` runs at its ``ts_close_ns``, so
        the target bar is emitted as soon as its last finer bar arrives.

        Raises:
            DataError: for another symbol, a bar whose timeframe is not finer than this one (``d`` only from
                intraday), or a bar that ends after the target bar it falls in.
        """
        if bar.symbol != self.symbol:
            raise DataError(f"bar for {bar.symbol!r} sent to the {self.symbol} {self.timeframe} bar aggregator")
        src = bar.timeframe
        if src is not self._fine_tf:  # checked once per timeframe object (a feed's bars share one)
            dst = self.timeframe
            if (dst.unit == "d" and src.unit == "d") or (dst.unit != "d" and src.ns > dst.ns):
                raise DataError(f"cannot build {dst} bars from {src} bars (the input must be finer)")
            self._fine_tf = src
        if bar.volume > 0:
            ts = bar.ts_open_ns
            if self._start <= ts < self._end:
                if bar.ts_close_ns > self._end:
                    self._straddle(bar, self._end)
                if bar.high > self._high:
                    self._high = bar.high
                if bar.low < self._low:
                    self._low = bar.low
                self._close = bar.close
                self._volume += bar.volume
                self._count += 1
            else:
                late = (self._start != _NO_START and ts < self._start) or (
                    self._watermark is not None and ts < self._watermark
                )
                if not late:
                    end = self._schedule.bounds(ts)[1]
                    if bar.ts_close_ns > end:
                        self._straddle(bar, end)
                if self._roll(bar.open, bar.volume, ts):
                    self._high, self._low, self._close = bar.high, bar.low, bar.close
                else:
                    self._high = max(self._high, bar.high)
                    self._low = min(self._low, bar.low)
        if self._start != _NO_START and bar.ts_close_ns >= self._end:  # on_time(bar.ts_close_ns), inlined
            self._close_bar()
        if self.emit_empty and self._start == _NO_START and self._watermark is not None:
            self._emit_empty_until(bar.ts_close_ns, whole_only=True)

    def _straddle(self, bar: Bar, end: int) -> NoReturn:
        raise DataError(
            f"{bar.timeframe} bar [{bar.ts_open_ns}, {bar.ts_close_ns}) ends after the end {end} of the "
            f"{self.timeframe} bar it falls in"
        )

    def on_time(self, ts_ns: int) -> None:
        """Advance the clock to ``ts_ns`` (UTC ns): emit the open bar if ``ts_ns`` is at or after its end, and with
        ``emit_empty`` every whole empty bar that ended by ``ts_ns``. Use it from a timer so a live bar closes on
        time even when no print follows."""
        if self._start != _NO_START and ts_ns >= self._end:
            self._close_bar()
        if self.emit_empty and self._start == _NO_START and self._watermark is not None:
            self._emit_empty_until(ts_ns, whole_only=True)

    def flush(self) -> None:
        """Emit the open bar now, as it is (end of data). Nothing happens if no bar is open."""
        if self._start != _NO_START:
            self._close_bar()

    # ------------------------------------------------------------------ emission
    def _close_bar(self) -> None:
        bar = Bar(
            self.symbol,
            self.timeframe,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
            self._bar_open_ns,
            self._end,
        )
        self._watermark = self._end
        self._last_close = self._close
        self._start, self._end = _NO_START, _NO_END
        if self._first_pending:
            self._first_pending = False
            if self._first_partial:
                self._withheld_bars += 1
                self._withheld_ticks += self._count
                self._withheld_volume += self._volume
                return
        self._emitted_bars += 1
        self._emitted_ticks += self._count
        self._emitted_volume += self._volume
        self.on_bar(bar)

    def _emit_empty_until(self, limit_ns: int, *, whole_only: bool = False) -> None:
        """Emit empty bars from the watermark: those starting before ``limit_ns`` (or, with ``whole_only``, those
        ending at or before it)."""
        wm = self._watermark
        if wm is None:
            return
        c = self._last_close
        sched = self._schedule
        while True:
            start, end, bar_open = sched.bounds(wm)
            if (end > limit_ns) if whole_only else (start >= limit_ns):
                break
            self._empty_bars += 1
            self._emitted_bars += 1
            wm = end
            self._watermark = wm
            self.on_bar(Bar(self.symbol, self.timeframe, c, c, c, c, 0, bar_open, end))

    # ------------------------------------------------------------------ counters
    @property
    def has_open_bar(self) -> bool:
        """True while a bar has prints and is not yet emitted."""
        return self._start != _NO_START

    @property
    def open_end_ns(self) -> int | None:
        """The end (UTC ns) of the open bar, ``None`` when no bar is open."""
        return self._end if self._start != _NO_START else None

    @property
    def open_volume(self) -> int:
        """Contracts in the open bar (0 if none)."""
        return self._volume if self._start != _NO_START else 0

    @property
    def open_ticks(self) -> int:
        """Prints (or input bars) in the open bar (0 if none)."""
        return self._count if self._start != _NO_START else 0

    @property
    def ticks_in(self) -> int:
        """Every print (or non-empty input bar) received: emitted + withheld + open."""
        return self._emitted_ticks + self._withheld_ticks + self.open_ticks

    @property
    def volume_in(self) -> int:
        """Every contract received: emitted + withheld + open."""
        return self._emitted_volume + self._withheld_volume + self.open_volume

    @property
    def bars_emitted(self) -> int:
        """Bars passed to ``on_bar``, empty ones included."""
        return self._emitted_bars

    @property
    def empty_bars_emitted(self) -> int:
        """Empty bars (volume 0) passed to ``on_bar``."""
        return self._empty_bars

    @property
    def emitted_ticks(self) -> int:
        """Prints (or input bars) inside emitted bars."""
        return self._emitted_ticks

    @property
    def emitted_volume(self) -> int:
        """Contracts inside emitted bars."""
        return self._emitted_volume

    @property
    def withheld_bars(self) -> int:
        """Bars withheld by ``skip_first_partial`` (0 or 1)."""
        return self._withheld_bars

    @property
    def withheld_ticks(self) -> int:
        """Prints (or input bars) in withheld bars."""
        return self._withheld_ticks

    @property
    def withheld_volume(self) -> int:
        """Contracts in withheld bars."""
        return self._withheld_volume

    @property
    def late_ticks(self) -> int:
        """Prints (or input bars) that arrived earlier than the open bar or the last emitted bar's end and were folded
        in."""
        return self._late_ticks

    @property
    def off_session_ticks(self) -> int:
        """Prints that fell before their daily bar's nominal session open (the weekend); they are in that bar."""
        return self._off_session_ticks
