"""NautilusTrader's ``BacktestEngine`` running the same long-only SMA cross as ``sma_cross`` and backtrader.

NautilusTrader 1.221 (https://nautilustrader.io/docs/latest/concepts/backtesting) needs pandas < 3, so it is not
importable in the dev virtualenv (pandas 3); it is in the ``bench`` extra only.

Set-up:

* instrument: ``FuturesContract`` ``ESZ5.GLBX`` (tick 0.25, multiplier 50, USD, expiry 2025-12-19 14:30 UTC; built
  like ``TestInstrumentProvider.es_future``, which has multiplier 1);
* venue ``GLBX``: NETTING, MARGIN account, 1e9 USD, no fees, no latency, default fill model (no slippage), an L1
  book driven by the bars (``bar_execution=True``, ``bar_adaptive_high_low_ordering=False``);
* data: one ``Bar`` per input bar, ``BarType`` ``ESZ5.GLBX-1-MINUTE-LAST-EXTERNAL``, ``ts_event = ts_init`` = the
  bar's CLOSE time (Nautilus's convention);
* strategy: two ``SimpleMovingAverage`` (``register_indicator_for_bars``) on the close and backtrader's
  ``CrossOver`` rule reproduced exactly (``nzd`` seeded on the first bar both SMAs exist, even when zero; up iff
  ``nzd[t-1] < 0 and fast > slow``; down iff ``nzd[t-1] > 0 and fast < slow``); flat + up: market BUY 1; long +
  down: market SELL of the position's size (reduce-only). Nautilus's SMA is a mean of the window, exact on the
  0.25 grid, so the signals are bit-identical to backtrader's.

**Fills differ from next-open.** With bars, Nautilus's matching engine moves its L1 book through each bar's
open, high, low and close *before* the strategy sees the bar; a market order sent in ``on_bar`` is then processed
at once (no latency) against that book, i.e. it fills at the signal bar's CLOSE, stamped with the bar's close
time. backtrader fills the same order at the next bar's OPEN, stamped with that bar's open time. For contiguous
1-minute bars the two times are equal (close of t = open of t+1) and the prices differ by the open gap (usually
0-1 tick on ES); across the daily halt and the weekend the times differ too. The position states, hence the
signals acted on and the trade count, are the same, except at the very end: an order sent on the last bar fills in
Nautilus but never in backtrader (checked: not the case on the ES file). A latency model does not give next-open:
the delayed order is processed after the next bar has moved the book to its close.

Timing: ``run_s`` is the wall time of ``engine.run()`` (the data loop, matching, strategy, and the engine's
post-run bookkeeping); building the instrument, the ``Bar`` objects and the engine is done before and not timed.
Logging is bypassed (``LoggingConfig(bypass_logging=True)``) so console output does not count.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.peers.common import ES_POINT_VALUE, PeerResult, PeerTrade, cli_args, load_es_bars, print_result

if TYPE_CHECKING:
    from propdesk.model.data import BarSeries

INSTALL_HINT = "nautilus_trader is not installed (it needs pandas < 3): pip install -e .[bench]"
VENUE = "GLBX"
ESZ5_ACTIVATION_NS = 1_685_741_400_000_000_000  # 2023-06-02 21:30 UTC (as TestInstrumentProvider.es_future)
ESZ5_EXPIRATION_NS = 1_766_154_600_000_000_000  # 2025-12-19 14:30 UTC (third Friday of Dec-2025)


def _import_nautilus() -> Any:
    try:
        import nautilus_trader  # noqa: PLC0415  (optional peer, imported on first use)
    except ImportError as exc:
        raise RuntimeError(INSTALL_HINT) from exc
    return nautilus_trader


@cache
def _strategy_class() -> Any:
    """The Nautilus strategy class (built once, after nautilus_trader is imported)."""
    _import_nautilus()
    from nautilus_trader.indicators import SimpleMovingAverage  # noqa: PLC0415
    from nautilus_trader.model.enums import OrderSide, TimeInForce  # noqa: PLC0415
    from nautilus_trader.trading.strategy import Strategy  # noqa: PLC0415

    class SmaCross(Strategy):  # type: ignore[misc]
        """Long-only SMA cross with backtrader's ``CrossOver`` rule; records every fill."""

        def __init__(self, instrument: Any, bar_type: Any, fast: int, slow: int) -> None:
            super().__init__()
            self.instrument = instrument
            self.instrument_id = instrument.id
            self.bar_type = bar_type
            self.fast_sma = SimpleMovingAverage(fast)
            self.slow_sma = SimpleMovingAverage(slow)
            self.slow = slow
            self.qty = instrument.make_qty(1)
            self.nbars = 0
            self.nzd = 0.0  # last non-zero fast - slow, as its sign (backtrader's NonZeroDifference)
            self.fills: list[tuple[int, str, int, bool]] = []  # (ts_event ns, price str, signed qty, is_buy)

        def on_start(self) -> None:
            self.register_indicator_for_bars(self.bar_type, self.fast_sma)
            self.register_indicator_for_bars(self.bar_type, self.slow_sma)
            self.subscribe_bars(self.bar_type)

        def on_bar(self, bar: Any) -> None:
            n = self.nbars + 1
            self.nbars = n
            if n < self.slow:
                return
            f = self.fast_sma.value
            s = self.slow_sma.value
            prev = self.nzd
            if n == self.slow:  # backtrader's nextstart: seed with the difference, even if zero
                self.nzd = 1.0 if f > s else (-1.0 if f < s else 0.0)
                return
            if f > s:
                self.nzd = 1.0
                if prev < 0.0 and self.portfolio.is_flat(self.instrument_id):
                    self.submit_order(self.order_factory.market(self.instrument_id, OrderSide.BUY, self.qty))
            elif f < s:
                self.nzd = -1.0
                if prev > 0.0:
                    net = self.portfolio.net_position(self.instrument_id)
                    if net > 0:
                        order = self.order_factory.market(
                            self.instrument_id,
                            OrderSide.SELL,
                            self.instrument.make_qty(net),
                            time_in_force=TimeInForce.GTC,
                            reduce_only=True,
                        )
                        self.submit_order(order)

        def on_order_filled(self, event: Any) -> None:
            is_buy = event.order_side == OrderSide.BUY
            q = int(event.last_qty.as_decimal())
            self.fills.append((event.ts_event, str(event.last_px), q if is_buy else -q, is_buy))

    return SmaCross


def _instrument(point_value: int) -> Any:
    from nautilus_trader.model.currencies import USD  # noqa: PLC0415
    from nautilus_trader.model.enums import AssetClass  # noqa: PLC0415
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue  # noqa: PLC0415
    from nautilus_trader.model.instruments import FuturesContract  # noqa: PLC0415
    from nautilus_trader.model.objects import Price, Quantity  # noqa: PLC0415

    return FuturesContract(
        instrument_id=InstrumentId(symbol=Symbol("ESZ5"), venue=Venue(VENUE)),
        raw_symbol=Symbol("ESZ5"),
        asset_class=AssetClass.INDEX,
        exchange="XCME",
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.25"),
        multiplier=Quantity.from_int(point_value),
        lot_size=Quantity.from_int(1),
        underlying="ES",
        activation_ns=ESZ5_ACTIVATION_NS,
        expiration_ns=ESZ5_EXPIRATION_NS,
        ts_event=ESZ5_ACTIVATION_NS,
        ts_init=ESZ5_ACTIVATION_NS,
    )


def _pair_fills(fills: list[tuple[int, str, int, bool]]) -> list[PeerTrade]:
    """Round trips from a flat-to-flat fill sequence (one entry fill, one exit fill each; long or short)."""
    trades: list[PeerTrade] = []
    open_fill: tuple[int, str, int, bool] | None = None
    for fill in fills:
        if open_fill is None:
            open_fill = fill
            continue
        if fill[2] != -open_fill[2]:
            raise RuntimeError(f"unexpected partial or adding fill {fill} after {open_fill}")
        trades.append(PeerTrade(open_fill[0], Decimal(open_fill[1]), fill[0], Decimal(fill[1]), open_fill[2]))
        open_fill = None
    return trades


def run_nautilus_sma(bars: BarSeries, fast: int = 10, slow: int = 30, point_value: int = ES_POINT_VALUE) -> PeerResult:
    """Run the SMA cross (module docstring) in NautilusTrader's ``BacktestEngine`` on ``bars``.

    Args:
        bars: the bars (UTC ns start/close times, float points on the 0.25 tick); one contract is traded.
        fast, slow: SMA periods in bars (``1 <= fast < slow``).
        point_value: USD per point per contract (ES: 50): the instrument's multiplier and the PnL's.

    Returns:
        :class:`PeerResult` named ``"nautilus_trader <version>"``: round trips whose entry/exit are the signal
        bars' close times (UTC ns) and close prices (see the module docstring), exact net PnL in USD (cross-checked
        against Nautilus's own realized PnL of its closed positions), and the timed ``engine.run()``.

    Raises:
        RuntimeError: nautilus_trader is not installed, or its fills/PnL are inconsistent.
        ValueError: ``fast``/``slow`` out of range.
    """
    if not 1 <= fast < slow:
        raise ValueError(f"need 1 <= fast < slow, got fast={fast} slow={slow}")
    nt = _import_nautilus()
    from nautilus_trader.backtest.engine import BacktestEngine  # noqa: PLC0415
    from nautilus_trader.config import BacktestEngineConfig, LoggingConfig  # noqa: PLC0415
    from nautilus_trader.model.currencies import USD  # noqa: PLC0415
    from nautilus_trader.model.data import Bar, BarType  # noqa: PLC0415
    from nautilus_trader.model.enums import AccountType, OmsType  # noqa: PLC0415
    from nautilus_trader.model.identifiers import Venue  # noqa: PLC0415
    from nautilus_trader.model.objects import Money  # noqa: PLC0415

    instrument = _instrument(point_value)
    bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
    ts_close = np.ascontiguousarray(bars.ts_close_ns, dtype=np.uint64)
    nt_bars = Bar.from_raw_arrays_to_list(
        bar_type,
        instrument.price_precision,
        instrument.size_precision,
        np.ascontiguousarray(bars.open, dtype=np.float64),
        np.ascontiguousarray(bars.high, dtype=np.float64),
        np.ascontiguousarray(bars.low, dtype=np.float64),
        np.ascontiguousarray(bars.close, dtype=np.float64),
        np.ascontiguousarray(bars.volume, dtype=np.float64),
        ts_close,
        ts_close,
    )

    engine = BacktestEngine(config=BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    try:
        engine.add_venue(
            venue=Venue(VENUE),
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            starting_balances=[Money(1_000_000_000, USD)],
            base_currency=USD,
            bar_execution=True,
            bar_adaptive_high_low_ordering=False,
        )
        engine.add_instrument(instrument)
        engine.add_data(nt_bars)
        strategy = _strategy_class()(instrument, bar_type, fast, slow)
        engine.add_strategy(strategy)

        t0 = time.perf_counter()
        engine.run()
        run_s = time.perf_counter() - t0

        trades = _pair_fills(strategy.fills)
        net = sum((t.pnl_usd(point_value) for t in trades), Decimal(0))
        realized = sum(
            (p.realized_pnl.as_decimal() for p in engine.cache.position_snapshots() + engine.cache.positions_closed()),
            Decimal(0),
        )
        if realized != net:
            raise RuntimeError(f"Nautilus realized PnL {realized} USD disagrees with its fills ({net} USD)")
    finally:
        engine.dispose()

    return PeerResult(
        name=f"nautilus_trader {nt.__version__}",
        trades=tuple(trades),
        net_pnl_usd=net,
        bars=len(bars),
        run_s=run_s,
        bars_per_s=len(bars) / run_s if run_s > 0 else float("inf"),
        note="timed: engine.run(), logging bypassed; market orders fill at the signal bar's close (bar execution)",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.peers.nautilus_sma [--clean] [--json] [--trades]``: run on the ES 1-minute file."""
    args = cli_args("NautilusTrader's SMA cross on the ES 1-minute bars", argv)
    bars = load_es_bars(args.file, clean=args.clean)
    print_result(run_nautilus_sma(bars, args.fast, args.slow), as_json=args.json, trades=args.trades)


if __name__ == "__main__":
    main()
