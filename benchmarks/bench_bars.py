"""Benchmark: ES trade prints into 1-, 5- and 15-minute bars; prints ticks/s (streaming and vectorized) and the peer's.

Input: the 74,907 real ESM8 prints of ``shared/data/es_trades_esm8_rtrawl`` (2018-05-07, 08:30-12:00 CT), repeated
``--reps`` times, each copy shifted by one day, so the stream is ~1.5 M prints in time order.

* streaming: three :class:`TimeBarAggregator` (1m, 5m, 15m) fed every print through ``handle_trade``. Target (issue):
  >= 500,000 prints/s for the three together.
* vectorized: :func:`aggregate_trades` for the three timeframes over the whole series.
* peer: project-x-py's ``RealtimeDataManager`` (``_process_tick_data``, the method its trade callback calls) on the
  same prints with the same three timeframes, run in a Python 3.12 venv (project-x-py 4.x needs >= 3.12) at
  ``~/.cache/propdesk-bench/pxpy312``; created with ``pip install project-x-py`` if missing (``--no-peer-install``
  to skip). Its 1 ms rate limit is set to 0 so it processes every print; it runs for ``--peer-seconds`` only, as it
  manages a few hundred prints/s. If it cannot run, the issue's quoted figure (550 prints/s) is printed, labelled as
  a quote, not a measurement.

Run: ``python benchmarks/bench_bars.py [--reps 20] [--runs 3] [--no-peer]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from propdesk.data.aggregation import TimeBarAggregator, aggregate_trades
from propdesk.data.loaders.trades_csv import load_trades_csv
from propdesk.model.data import NS_PER_DAY, Bar, Timeframe, TradeSeries

TRADES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "es_trades_esm8_rtrawl"
TRADES_FILE = TRADES / "ESM8_trades_20180507.csv.gz"
TIMEFRAMES = ("1m", "5m", "15m")
PEER_QUOTED_TICKS_PER_S = 550.0  # from the issue text: project-x-py's realtime bar builder on these machines
PEER_VENV = Path.home() / ".cache" / "propdesk-bench" / "pxpy312"
PEER_PYTHON_BASE = Path("/root/.pyenv/versions/3.12.1/bin/python")
TARGET = 500_000.0

PEER_DRIVER = r"""
import asyncio, json, logging, sys, time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def main() -> None:
    path, limit_s = sys.argv[1], float(sys.argv[2])
    logging.disable(logging.CRITICAL)
    import polars as pl
    from project_x_py.event_bus import EventBus
    from project_x_py.realtime_data_manager import RealtimeDataManager

    class StubRealtime:  # stands in for the SignalR client; the manager only stores it here
        async def add_callback(self, *a, **k):
            return None

    tz = ZoneInfo("America/Chicago")
    ticks = []
    with open(path) as f:
        for line in f:
            ts, px, sz = line.split(",")
            ticks.append({"timestamp": datetime.fromtimestamp(int(ts) / 1e9, tz=timezone.utc).astimezone(tz),
                          "price": float(px), "volume": int(sz)})
    tfs = ["1min", "5min", "15min"]

    async def run() -> dict:
        m = RealtimeDataManager("ES", object(), StubRealtime(), timeframes=tfs)
        schema = {"timestamp": pl.Datetime("us", "America/Chicago"), "open": pl.Float64, "high": pl.Float64,
                  "low": pl.Float64, "close": pl.Float64, "volume": pl.Int64}
        for tf in tfs:  # what initialize() would load from history
            m.data[tf] = pl.DataFrame(schema=schema)
        m.tick_size = 0.25
        m.is_running = True
        m._min_update_interval = 0.0  # else prints < 1 ms apart in wall time are skipped
        n = 0
        t0 = time.perf_counter()
        for tick in ticks:
            await m._process_tick_data(tick)
            n += 1
            if (n & 63) == 0 and time.perf_counter() - t0 > limit_s:
                break
        dt = time.perf_counter() - t0
        return {"ticks": n, "seconds": dt, "bars": {tf: m.data[tf].height for tf in tfs},
                "volume": {tf: int(m.data[tf]["volume"].sum()) for tf in tfs},
                "version": __import__("importlib.metadata").metadata.version("project-x-py")}

    print("PEER_RESULT " + json.dumps(asyncio.run(run())))


main()
"""


def load(reps: int) -> TradeSeries:
    """The ESM8 prints (size 1 each: the file has no sizes) repeated ``reps`` times, each copy one day later."""
    base = load_trades_csv(TRADES_FILE, symbol="ESM8", default_size=1).series
    n = len(base)
    shift = np.repeat(np.arange(reps, dtype=np.int64) * NS_PER_DAY, n)
    return TradeSeries(
        "ESM8",
        np.tile(base.ts_event_ns, reps) + shift,
        np.tile(base.price, reps),
        np.tile(base.size, reps),
        np.tile(base.aggressor, reps),
    )


def bench_streaming(trades: TradeSeries) -> tuple[float, int]:
    """One pass of the three streaming aggregators; returns (prints/s, bars emitted)."""
    prices, sizes, stamps = trades.price.tolist(), trades.size.tolist(), trades.ts_event_ns.tolist()
    bars: list[Bar] = []
    on_bar: Callable[[Bar], None] = bars.append
    aggs = [TimeBarAggregator("ESM8", Timeframe.parse(tf), on_bar) for tf in TIMEFRAMES]
    h1, h5, h15 = (a.handle_trade for a in aggs)
    t0 = time.perf_counter()
    for p, s, ts in zip(prices, sizes, stamps, strict=True):
        h1(p, s, ts)
        h5(p, s, ts)
        h15(p, s, ts)
    for a in aggs:
        a.flush()
    dt = time.perf_counter() - t0
    total = int(trades.size.sum())
    for a in aggs:  # the invariant, checked on every run (not timed)
        if a.emitted_volume != total or a.emitted_ticks != len(trades):
            raise SystemExit(f"{a.timeframe}: volume {a.emitted_volume} / prints {a.emitted_ticks} != {total}")
    return len(trades) / dt, len(bars)


def bench_vectorized(trades: TradeSeries) -> float:
    """One pass of :func:`aggregate_trades` for the three timeframes; returns prints/s (prints counted once)."""
    t0 = time.perf_counter()
    for tf in TIMEFRAMES:
        aggregate_trades(trades, Timeframe.parse(tf))
    return len(trades) / (time.perf_counter() - t0)


def peer_python(install: bool) -> Path | None:
    """The peer venv's python, creating the venv (pip install project-x-py) if asked and missing."""
    py = PEER_VENV / "bin" / "python"
    if py.exists():
        return py
    if not install or not PEER_PYTHON_BASE.exists():
        return None
    print(f"creating {PEER_VENV} (python 3.12 + project-x-py) ...", flush=True)
    try:
        subprocess.run([str(PEER_PYTHON_BASE), "-m", "venv", str(PEER_VENV)], check=True, timeout=300)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "project-x-py"], check=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"peer venv setup failed: {exc}")
        return None
    return py


def bench_peer(trades: TradeSeries, py: Path, seconds: float) -> dict[str, object] | None:
    """Run project-x-py's bar builder on the same prints in a subprocess; returns its PEER_RESULT or None."""
    with tempfile.TemporaryDirectory() as tmp:
        ticks = Path(tmp) / "ticks.csv"
        with ticks.open("w") as f:
            for ts, px, sz in zip(
                trades.ts_event_ns.tolist(), trades.price.tolist(), trades.size.tolist(), strict=True
            ):
                f.write(f"{ts},{px},{sz}\n")
        driver = Path(tmp) / "peer_driver.py"
        driver.write_text(PEER_DRIVER)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        try:
            out = subprocess.run(
                [str(py), str(driver), str(ticks), str(seconds)],
                capture_output=True,
                text=True,
                timeout=seconds + 240,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print("peer timed out")
            return None
    for line in out.stdout.splitlines():
        if line.startswith("PEER_RESULT "):
            result: dict[str, object] = json.loads(line.removeprefix("PEER_RESULT "))
            return result
    print(f"peer failed (exit {out.returncode}): {out.stderr.strip()[-800:]}")
    return None


def main() -> None:
    """Parse arguments, run the benchmarks, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=20, help="copies of the 74,907 ESM8 prints (default 20)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs of each propdesk path (default 3)")
    ap.add_argument("--no-peer", action="store_true", help="do not run project-x-py")
    ap.add_argument("--no-peer-install", action="store_true", help="do not create the peer venv if missing")
    ap.add_argument("--peer-seconds", type=float, default=15.0, help="how long to run the peer (default 15)")
    args = ap.parse_args()

    trades = load(args.reps)
    n = len(trades)
    print(f"input: {n:,} ESM8 prints ({args.reps} x 74,907, one day apart); timeframes {', '.join(TIMEFRAMES)}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s)")

    stream = [bench_streaming(trades) for _ in range(args.runs)]
    rates = [r for r, _ in stream]
    best, med = max(rates), statistics.median(rates)
    print(
        f"streaming  (3 aggregators, handle_trade): best {best:,.0f} prints/s, median {med:,.0f} "
        f"({stream[0][1]:,} bars; target {TARGET:,.0f}: {'met' if med >= TARGET else 'NOT met'})"
    )
    vec = [bench_vectorized(trades) for _ in range(args.runs)]
    print(
        f"vectorized (aggregate_trades x 3):      best {max(vec):,.0f} prints/s, median {statistics.median(vec):,.0f}"
    )

    peer: dict[str, object] | None = None
    if not args.no_peer:
        py = peer_python(install=not args.no_peer_install)
        if py is None:
            print("peer: project-x-py venv not available")
        else:
            peer = bench_peer(trades, py, args.peer_seconds)
    if peer is not None:
        ticks = float(str(peer["ticks"]))
        rate = ticks / float(str(peer["seconds"]))
        print(
            f"peer       (project-x-py {peer.get('version')} RealtimeDataManager, same 3 timeframes, measured): "
            f"{rate:,.0f} prints/s over its first {ticks:,.0f} prints (bars {peer['bars']}, volume {peer['volume']})"
        )
        print(f"ratio propdesk streaming / peer: {med / rate:,.0f}x (median)")
    else:
        print(f"peer: NOT measured; quoted reference from the issue: {PEER_QUOTED_TICKS_PER_S:,.0f} prints/s")
        print(f"ratio propdesk streaming / quoted peer figure: {med / PEER_QUOTED_TICKS_PER_S:,.0f}x (median)")


if __name__ == "__main__":
    main()
