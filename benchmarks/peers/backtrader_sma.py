"""backtrader's canonical SMA cross on a :class:`~propdesk.model.data.BarSeries`: the reference peer of ``sma_cross``.

The strategy is backtrader's own example (https://www.backtrader.com/docu/quickstart/quickstart/ and
``samples/sigsmacross``), long-only::

    crossover = bt.ind.CrossOver(bt.ind.SMA(period=fast), bt.ind.SMA(period=slow))   # on the close
    def next(self):
        if not self.position:
            if self.crossover > 0: self.buy(size=1)
        elif self.crossover < 0: self.close()

Broker: backtrader's default ``BackBroker``: a market order sent in ``next()`` of bar ``t`` fills at the open of
bar ``t + 1`` (``cheat_on_open=False``), no commission, no slippage, cash 1e9 (never limiting). An order sent on
the last bar never fills; a position still open at the end is not a round trip.

Feed: an in-memory ``DataBase`` subclass whose datetime is the bar's START time as a naive UTC date number
(``bt.date2num``), so a fill's time is the open time of the bar it filled on. Times are mapped back to UTC ns
exactly through the date numbers fed (no microsecond rounding).

Timing: ``run_s`` is the wall time of ``cerebro.run()`` only, which includes backtrader's preload of the feed
(reading our arrays into its line buffers), the vectorized (``runonce``) indicator pass and the event loop; the
conversion of the arrays to date numbers and lists is done before and not timed. Settings are backtrader's
defaults (``preload=True``, ``runonce=True``) with ``stdstats=False`` (no default observers: propdesk's run does
not compute broker value/cash series either).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from benchmarks.peers.common import (
    ES_POINT_VALUE,
    PeerResult,
    PeerTrade,
    cli_args,
    load_es_bars,
    price_decimal,
    print_result,
)

if TYPE_CHECKING:
    from propdesk.model.data import BarSeries

_EPOCH = datetime(1970, 1, 1)
INSTALL_HINT = "backtrader is not installed: pip install -e .[bench]"


def _import_backtrader() -> Any:
    try:
        import backtrader  # noqa: PLC0415  (optional peer, imported on first use)
    except ImportError as exc:
        raise RuntimeError(INSTALL_HINT) from exc
    return backtrader


@cache
def _classes() -> tuple[Any, Any]:
    """The feed and strategy classes (built once, after backtrader is imported)."""
    bt = _import_backtrader()

    class ArrayFeed(bt.feed.DataBase):  # type: ignore[misc,name-defined]
        """Bars from prepared lists: date numbers (bar start, naive UTC) and OHLCV floats."""

        params = (("timeframe", bt.TimeFrame.Minutes), ("compression", 1))

        def __init__(self, rows: tuple[list[float], ...]) -> None:
            super().__init__()
            self._rows = rows
            self._i = 0
            self._n = len(rows[0])

        def start(self) -> None:
            super().start()
            self._i = 0

        def _load(self) -> bool:
            i = self._i
            if i >= self._n:
                return False
            self._i = i + 1
            dt, o, h, lo, c, v = self._rows
            lines = self.lines
            lines.datetime[0] = dt[i]
            lines.open[0] = o[i]
            lines.high[0] = h[i]
            lines.low[0] = lo[i]
            lines.close[0] = c[i]
            lines.volume[0] = v[i]
            lines.openinterest[0] = 0.0
            return True

    class SmaCross(bt.Strategy):  # type: ignore[misc,name-defined]
        """backtrader's canonical long-only SMA cross; records completed orders and closed trades."""

        params = (("fast", 10), ("slow", 30))

        def __init__(self) -> None:
            sma_fast = bt.ind.SMA(period=self.p.fast)
            sma_slow = bt.ind.SMA(period=self.p.slow)
            self.crossover = bt.ind.CrossOver(sma_fast, sma_slow)
            self.fills: list[tuple[float, float, float]] = []  # (date number, price, signed size)
            # (dtopen, entry price, dtclose, exit date number, exit price, exit size, pnl in points*size)
            self.round_trips: list[tuple[float, float, float, float, float, float, float]] = []

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                ex = order.executed
                self.fills.append((ex.dt, ex.price, ex.size))

        def notify_trade(self, trade: Any) -> None:
            # orders are notified before trades, so the closing order's fill is already the last one recorded
            if trade.isclosed:
                dt, px, size = self.fills[-1]
                self.round_trips.append((trade.dtopen, trade.price, trade.dtclose, dt, px, size, trade.pnl))

        def next(self) -> None:
            if not self.position:
                if self.crossover > 0:
                    self.buy(size=1)
            elif self.crossover < 0:
                self.close()

    return ArrayFeed, SmaCross


def _date_numbers(ts_ns: Sequence[int], bt: Any) -> list[float]:
    """backtrader's date number of each UTC ns time (as ``bt.date2num`` computes it from a naive UTC datetime)."""
    date2num = bt.date2num
    return [date2num(_EPOCH + timedelta(microseconds=t // 1_000)) for t in ts_ns]


def run_backtrader_sma(
    bars: BarSeries, fast: int = 10, slow: int = 30, point_value: int = ES_POINT_VALUE
) -> PeerResult:
    """Run backtrader's canonical SMA cross (module docstring) on ``bars`` and return its round trips.

    Args:
        bars: the bars (UTC ns start/close times, float points); one contract is traded.
        fast, slow: SMA periods in bars (``1 <= fast < slow``).
        point_value: USD per point per contract (ES: 50), for the PnL.

    Returns:
        :class:`PeerResult` named ``"backtrader <version>"``: round trips with entry/exit at bar open times (UTC ns)
        and open prices (next-open fills), exact net PnL in USD, and the timed ``cerebro.run()``.

    Raises:
        RuntimeError: backtrader is not installed; or a fill's time is not one of the bars' (a broken invariant);
            or backtrader's own trade PnL disagrees with the fills.
        ValueError: ``fast``/``slow`` out of range.
    """
    if not 1 <= fast < slow:
        raise ValueError(f"need 1 <= fast < slow, got fast={fast} slow={slow}")
    bt = _import_backtrader()
    feed_cls, strategy_cls = _classes()

    ts_open = bars.ts_open_ns.tolist()
    dtnums = _date_numbers(ts_open, bt)
    ts_of = dict(zip(dtnums, ts_open, strict=True))
    if len(ts_of) != len(ts_open):
        raise RuntimeError("two bars map to the same backtrader date number")
    rows = (
        dtnums,
        bars.open.tolist(),
        bars.high.tolist(),
        bars.low.tolist(),
        bars.close.tolist(),
        [float(v) for v in bars.volume.tolist()],
    )

    cerebro = bt.Cerebro(stdstats=False)  # preload=True, runonce=True (defaults)
    cerebro.broker.setcash(1e9)
    cerebro.broker.set_coc(False)  # default, stated: fills at the next bar's open
    cerebro.adddata(feed_cls(rows))
    cerebro.addstrategy(strategy_cls, fast=fast, slow=slow)

    t0 = time.perf_counter()
    strategy = cerebro.run()[0]
    run_s = time.perf_counter() - t0

    trades: list[PeerTrade] = []
    for dtopen, entry_px, dtclose, exit_dt, exit_px, exit_size, pnl_points in strategy.round_trips:
        if exit_dt != dtclose or dtopen not in ts_of or exit_dt not in ts_of:
            raise RuntimeError(f"backtrader fill time not on a bar: open={dtopen} close={dtclose} fill={exit_dt}")
        trade = PeerTrade(
            entry_ts_ns=ts_of[dtopen],
            entry_price=price_decimal(entry_px),
            exit_ts_ns=ts_of[exit_dt],
            exit_price=price_decimal(exit_px),
            qty=-round(exit_size),
        )
        if trade.pnl_usd(1) != price_decimal(pnl_points):
            raise RuntimeError(f"backtrader's trade PnL {pnl_points} disagrees with its fills: {trade}")
        trades.append(trade)

    net = sum((t.pnl_usd(point_value) for t in trades), Decimal(0))
    return PeerResult(
        name=f"backtrader {bt.__version__}",
        trades=tuple(trades),
        net_pnl_usd=net,
        bars=len(bars),
        run_s=run_s,
        bars_per_s=len(bars) / run_s if run_s > 0 else float("inf"),
        note="timed: cerebro.run() (preload + runonce indicators + event loop), stdstats=False; next-open fills",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.peers.backtrader_sma [--clean] [--json] [--trades]``: run on the ES 1-minute file."""
    args = cli_args("backtrader's SMA cross on the ES 1-minute bars", argv)
    bars = load_es_bars(args.file, clean=args.clean)
    print_result(run_backtrader_sma(bars, args.fast, args.slow), as_json=args.json, trades=args.trades)


if __name__ == "__main__":
    main()
