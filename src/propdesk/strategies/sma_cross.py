"""``sma_cross``: the reference strategy. Long-only fast/slow SMA crossover on the close, one contract.

It mirrors backtrader's canonical example (https://www.backtrader.com/docu/quickstart/quickstart/ and
``samples/sigsmacross``) bar for bar, so that a backtest with next-open fills matches backtrader trade for trade::

    crossover = bt.indicators.CrossOver(SMA(close, fast), SMA(close, slow))
    def next(self):
        if not self.position:
            if self.crossover > 0: self.buy()
        elif self.crossover < 0: self.close()

**The crossover rule** is backtrader 1.9.78's ``bt.indicators.CrossOver`` (``backtrader/indicators/crossover.py``),
reproduced exactly, including equality:

* ``diff = fast - slow`` on each bar where both SMAs are defined (the first is bar ``slow - 1``, 0-based).
* ``nzd`` ("non-zero difference") is seeded with ``diff`` on that first bar, *even when it is zero*; afterwards
  ``nzd = diff if diff != 0 else nzd(previous bar)``. Equal SMAs therefore neither cross nor reset the memory.
* crossover up on bar ``t`` (``+1``) iff ``nzd[t-1] < 0 and fast[t] > slow[t]``; down (``-1``) iff
  ``nzd[t-1] > 0 and fast[t] < slow[t]``; else ``0``. The first bar that can signal is bar ``slow`` (``nzd[t-1]``
  must exist). So ``fast`` touching ``slow`` from below and then rising above it is one cross, on the bar it ends
  above; a seed difference of exactly 0 followed by a rise is *not* a cross (``nzd`` stays 0 until a nonzero diff).

The comparisons use the SMAs as floats. On a tick grid (ES 0.25) the window sums are exact in binary floating point
both here (a running sum) and in backtrader (``math.fsum``), and the division by the period is correctly rounded in
both, so the values are bit-identical and so are the signals.

**The trading rule** (each closed bar, after the indicators were updated):

* flat (the context's position is 0) and crossover up: market-buy ``qty`` contracts;
* in a position and crossover down: close it at market (backtrader's ``close()``: ``sell(size=position.size)`` for a
  long; a short, which this strategy never opens, would be bought back);
* otherwise nothing. A crossover down while flat is ignored (long-only).

The position is the context's, i.e. the position manager's attribution of the fills processed so far: a flatten by
the risk engine (fills tagged ``risk:<RULE>``) or a close at the broker leaves it flat, and it buys again on the next
crossover up. In a backtest with next-open fills the order sent on
bar ``t``'s close fills at bar ``t+1``'s open, before bar ``t+1`` closes, which is exactly backtrader's
``self.position`` in ``next()``. One guard is added for live trading, where a fill may lag: while the last order
sent is still open (not filled, canceled, rejected or denied), no new order is sent. With next-open fills the
order is always done by the next bar, so the guard never changes a backtest.

Per-bar work: two O(1) SMA updates and a few float comparisons; the position is read only on a crossover bar.

Parameters (``--param k=v``; plus ``symbol``, ``qty``, ``tag``, ``timeframe`` of
:class:`~propdesk.strategies.base.StrategyConfig`):

* ``fast`` (int >= 1, default 10): bars in the fast SMA of the close;
* ``slow`` (int > ``fast``, default 30): bars in the slow SMA of the close.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from propdesk.data.indicators.moving_averages import SMA
from propdesk.model.data import Bar
from propdesk.model.orders import Order
from propdesk.strategies.base import Strategy, StrategyConfig


class SmaCrossConfig(StrategyConfig):
    """Parameters of :class:`SmaCross` (see the module docstring).

    Raises:
        pydantic.ValidationError (a ConfigError through ``from_params``): ``fast`` < 1 or ``slow`` <= ``fast``.
    """

    fast: int = Field(default=10, ge=1, description="bars in the fast SMA of the close")
    slow: int = Field(default=30, ge=2, description="bars in the slow SMA of the close (> fast)")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossConfig:
        if self.slow <= self.fast:
            raise ValueError(f"slow ({self.slow}) must be greater than fast ({self.fast})")
        return self


class SmaCross(Strategy):
    """Long-only SMA crossover on the close; backtrader's ``CrossOver`` rule exactly (see the module docstring).

    Attributes:
        crossover: the last bar's crossover: ``+1`` up, ``-1`` down, ``0`` none (also 0 during the warm-up).
        bars: the number of bars seen.
    """

    name: ClassVar[str] = "sma_cross"
    config_cls: ClassVar[type[StrategyConfig]] = SmaCrossConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        assert isinstance(cfg, SmaCrossConfig)
        self.fast_sma = SMA(cfg.fast)
        self.slow_sma = SMA(cfg.slow)
        self.register_indicator(self.fast_sma)
        self.register_indicator(self.slow_sma)
        self._fast_update = self.fast_sma.update
        self._slow_update = self.slow_sma.update
        self._warmup = cfg.slow  # bars until both SMAs are defined (slow > fast)
        self._nzd = 0.0  # the last non-zero fast - slow (backtrader's NonZeroDifference), as its sign
        self._pending: Order | None = None
        self.crossover = 0
        self.bars = 0
        # on_bar not overridden: handle_bar passes the SMA values it just computed straight to the rule
        self._direct = type(self).on_bar is SmaCross.on_bar

    def handle_bar(self, bar: Bar) -> None:
        """Update both SMAs with the close, then :meth:`on_bar` (the base's loop, unrolled for speed; when a
        subclass does not override ``on_bar``, its rule is applied directly to the two new SMA values)."""
        close = bar.close
        f = self._fast_update(close)
        s = self._slow_update(close)
        if not self._direct:
            self.on_bar(bar)
            return
        # _on_smas(f, s), inlined (one Python call less per bar); keep the two in step
        n = self.bars + 1
        self.bars = n
        warmup = self._warmup
        if n <= warmup:
            if n == warmup:  # backtrader's nextstart: seed with the difference, even if zero
                self._nzd = 1.0 if f > s else (-1.0 if f < s else 0.0)
            return
        if f > s:
            if self._nzd >= 0.0:
                self._nzd = 1.0
                self.crossover = 0
                return
            self._nzd = 1.0
            self.crossover = 1
            self._act(1)
        elif f < s:
            if self._nzd <= 0.0:
                self._nzd = -1.0
                self.crossover = 0
                return
            self._nzd = -1.0
            self.crossover = -1
            self._act(-1)
        else:
            self.crossover = 0

    def on_bar(self, bar: Bar) -> None:
        """Compute the crossover (see the module docstring) and act on it."""
        self._on_smas(self.fast_sma.value, self.slow_sma.value)

    def _on_smas(self, f: float, s: float) -> None:
        """The crossover rule on this bar's fast (``f``) and slow (``s``) SMA values (NaN during the warm-up)."""
        n = self.bars + 1
        self.bars = n
        if n < self._warmup:
            return
        prev = self._nzd
        if n == self._warmup:  # backtrader's nextstart: seed with the difference, even if zero
            self._nzd = 1.0 if f > s else (-1.0 if f < s else 0.0)
            return
        if f > s:
            self._nzd = 1.0
            if prev >= 0.0:
                self.crossover = 0
                return
            self.crossover = 1
        elif f < s:
            self._nzd = -1.0
            if prev <= 0.0:
                self.crossover = 0
                return
            self.crossover = -1
        else:
            self.crossover = 0
            return
        self._act(self.crossover)

    def _act(self, crossover: int) -> None:
        pending = self._pending
        if pending is not None:
            if not pending.is_done:
                return
            self._pending = None
        pos = self.position
        if pos == 0:
            if crossover > 0:
                self._pending = self.buy()
        elif crossover < 0:  # backtrader's close(): an order of the position's size on the other side
            self._pending = self.sell(pos) if pos > 0 else self.buy(-pos)
