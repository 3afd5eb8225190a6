"""Benchmark (issue 3): the ``sma_cross`` reference backtest in propdesk, backtrader and NautilusTrader, same bars.

Input: the ES 1-minute file (``shared/data/es_1min_topstepx_esz5``, 75,791 bars, ``--clean`` for the clean segment
only), loaded once through propdesk's loader. Strategy: long-only SMA cross, fast 10 / slow 30 on the close, one
contract (backtrader's canonical ``CrossOver`` example; see :mod:`propdesk.strategies.sma_cross`).

* propdesk: :func:`propdesk.backtest.engine.run_backtest` through the whole trading node (bus, strategy, simulated
  exchange, order and position managers), next-open fills, no slippage, no commissions or fees, no closed-period
  check (the peers have no exchange calendar); best of ``--runs``
  (default 3). Timed: the replay loop (``BacktestResult.run_s``).
* backtrader: :func:`benchmarks.peers.backtrader_sma.run_backtrader_sma` (default broker: next-open fills, no costs).
  Timed: ``cerebro.run()``.
* NautilusTrader: :func:`benchmarks.peers.nautilus_sma.run_nautilus_sma`, in this interpreter when it imports
  ``nautilus_trader``; otherwise in the interpreter given by ``--nautilus-python PATH`` or the environment variable
  ``PROPDESK_BENCH_NAUTILUS_PYTHON`` (a virtualenv with the ``bench`` extra: NautilusTrader needs pandas < 3), as a
  subprocess ``python -m benchmarks.peers.nautilus_sma --json`` whose :class:`PeerResult` is read back. Nautilus
  fills a market order at the signal bar's close (see that module), so only its trade count is compared.

Checks (exit status 1 when one fails): the same number of round trips in every engine; against backtrader, every
round trip's entry and exit time (UTC ns) and price identical, and the same net PnL. The issue's targets are printed
with the ratios: propdesk >= 20x backtrader and >= 5x NautilusTrader in bars/s.

Run: ``python benchmarks/bench_backtest.py [--runs 3] [--clean] [--no-backtrader] [--no-nautilus]
[--nautilus-python PATH]`` or ``python -m benchmarks.bench_backtest ...``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable (for ``benchmarks.*``)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from benchmarks.peers.common import ES_1MIN_FILE, ES_SYMBOL, PeerResult, PeerTrade, load_es_bars
from propdesk.backtest.engine import BacktestConfig, BacktestResult, run_backtest
from propdesk.brokers.sim.config import SimConfig
from propdesk.model.data import BarSeries
from propdesk.strategies.registry import build_strategy

REPO_ROOT = Path(__file__).resolve().parents[1]
NAUTILUS_ENV = "PROPDESK_BENCH_NAUTILUS_PYTHON"
TARGET_VS_BACKTRADER = 20.0
TARGET_VS_NAUTILUS = 5.0
QUOTED = {"backtrader": 12_700.0, "nautilus_trader": 33_000.0}  # the figures "on these machines", bars/s


def run_propdesk(bars: BarSeries, fast: int, slow: int, runs: int) -> tuple[BacktestResult, list[float]]:
    """Run propdesk's ``sma_cross`` ``runs`` times (no costs, next-open fills); the fastest result and every rate.

    The closed-period check is off (``calendar_check="off"``): the peers have no exchange calendar and trade every
    bar, including the file's bars inside closed periods (Labor Day afternoon, the Friday 16:00 CT bars); the check
    itself costs one integer comparison per bar either way."""
    config = BacktestConfig(
        sim=SimConfig(
            fill_model="next-open", slippage_ticks=0, commission_per_side_usd=Decimal(0), calendar_check="off"
        )
    )
    best: BacktestResult | None = None
    rates: list[float] = []
    for _ in range(max(1, runs)):
        result = run_backtest(bars, build_strategy("sma_cross", {"fast": str(fast), "slow": str(slow)}), config)
        rates.append(result.bars_per_s)
        if best is None or result.run_s < best.run_s:
            best = result
    assert best is not None
    return best, rates


def propdesk_trades(result: BacktestResult) -> list[PeerTrade]:
    """propdesk's closed round trips in the peers' shape (exact Decimal prices, UTC ns, signed quantity)."""
    return [
        PeerTrade(
            t.entry_ts_ns, t.entry_price.as_decimal(), t.exit_ts_ns, t.exit_price.as_decimal(), t.direction * t.qty
        )
        for t in result.trips
    ]


def run_nautilus(bars: BarSeries, args: argparse.Namespace, console: Console) -> tuple[PeerResult | None, str]:
    """NautilusTrader's run, in this interpreter or in ``--nautilus-python``; (result or None, how it ran / why not)."""
    try:
        import nautilus_trader  # noqa: F401, PLC0415  (optional peer)
    except ImportError:
        pass
    else:
        from benchmarks.peers.nautilus_sma import run_nautilus_sma  # noqa: PLC0415

        return run_nautilus_sma(bars, args.fast, args.slow), "in this interpreter"
    python = args.nautilus_python or os.environ.get(NAUTILUS_ENV)
    if not python:
        return None, f"nautilus_trader not importable here; pass --nautilus-python PATH or set {NAUTILUS_ENV}"
    cmd = [python, "-m", "benchmarks.peers.nautilus_sma", "--json", "--file", args.file]
    cmd += ["--fast", str(args.fast), "--slow", str(args.slow)] + (["--clean"] if args.clean else [])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    console.print(f"running NautilusTrader in {python} ...")
    try:
        out = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not run {python}: {exc}"
    line = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{")), None)
    if out.returncode != 0 or line is None:
        return None, f"{python} failed (exit {out.returncode}): {out.stderr.strip()[-600:]}"
    result = PeerResult.from_json(line)
    if result.bars != len(bars):
        return None, f"{python} read {result.bars} bars, propdesk {len(bars)}: not the same input"
    return result, f"subprocess {python}"


def compare_exact(mine: Sequence[PeerTrade], peer: PeerResult) -> list[str]:
    """Differences between propdesk's round trips and a next-open peer's (count, each time/price/qty, net PnL)."""
    problems: list[str] = []
    if len(mine) != len(peer.trades):
        problems.append(f"{peer.name}: {len(peer.trades)} round trips, propdesk {len(mine)}")
    for i, (a, b) in enumerate(zip(mine, peer.trades, strict=False)):
        if a != b:
            problems.append(f"{peer.name}: round trip {i} differs: propdesk {a} vs {b}")
            if len(problems) > 10:
                problems.append("... (further differences not listed)")
                break
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the engines, print the table; return 0 when every check passed, else 1."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--file", default=str(ES_1MIN_FILE), help="bar file (default: the ES 1-minute file)")
    ap.add_argument("--clean", action="store_true", help="only the clean segment (2025-09-14 22:00 UTC onward)")
    ap.add_argument("--fast", type=int, default=10)
    ap.add_argument("--slow", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3, help="propdesk runs; the fastest counts (default 3)")
    ap.add_argument("--no-backtrader", action="store_true", help="skip backtrader")
    ap.add_argument("--no-nautilus", action="store_true", help="skip NautilusTrader")
    ap.add_argument("--nautilus-python", help=f"python of a virtualenv with nautilus_trader (or ${NAUTILUS_ENV})")
    args = ap.parse_args(argv)
    console = Console(width=max(Console().width, 120))  # a pipe reports 80 columns: keep table rows on one line

    bars = load_es_bars(args.file, clean=args.clean)
    console.print(
        f"input: {len(bars):,} {ES_SYMBOL} {bars.timeframe} bars from {Path(args.file).name}; "
        f"sma_cross fast={args.fast} slow={args.slow}; python {platform.python_version()}, {os.cpu_count()} cpu(s)"
    )
    result, rates = run_propdesk(bars, args.fast, args.slow, args.runs)
    mine = propdesk_trades(result)
    mine_pnl = result.metrics.net_pnl.as_decimal()
    console.print("propdesk runs: " + ", ".join(f"{r:,.0f}" for r in rates) + " bars/s")

    peers: list[PeerResult] = []
    problems: list[str] = []
    notes: list[str] = []
    if not args.no_backtrader:
        from benchmarks.peers.backtrader_sma import run_backtrader_sma  # noqa: PLC0415

        bt = run_backtrader_sma(bars, args.fast, args.slow)
        peers.append(bt)
        problems += compare_exact(mine, bt)
        if bt.net_pnl_usd.quantize(Decimal("0.01")) != mine_pnl:
            problems.append(f"{bt.name}: net PnL {bt.net_pnl_usd} USD, propdesk {mine_pnl} USD")
    if not args.no_nautilus:
        nt, how = run_nautilus(bars, args, console)
        notes.append(f"NautilusTrader: {how}")
        if nt is not None:
            peers.append(nt)
            if len(nt.trades) != len(mine):
                problems.append(f"{nt.name}: {len(nt.trades)} round trips, propdesk {len(mine)}")

    table = Table(title="sma_cross reference backtest (bars/s: higher is better)")
    for col, justify in (("engine", "left"), ("bars/s", "right"), ("round trips", "right"), ("net PnL (USD)", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("propdesk / engine", justify="right")
    table.add_column("target", justify="right")
    table.add_row("propdesk", f"{result.bars_per_s:,.0f}", str(len(mine)), f"{mine_pnl}", "1.0x", "")
    verdicts: list[str] = []
    for peer in peers:
        ratio = result.bars_per_s / peer.bars_per_s if peer.bars_per_s else float("inf")
        target = TARGET_VS_NAUTILUS if peer.name.startswith("nautilus") else TARGET_VS_BACKTRADER
        met = "met" if ratio >= target else "NOT met"
        verdicts.append(f"{peer.name}: {ratio:.1f}x (target {target:.0f}x: {met})")
        table.add_row(
            peer.name,
            f"{peer.bars_per_s:,.0f}",
            str(len(peer.trades)),
            f"{peer.net_pnl_usd}",
            f"{ratio:.1f}x",
            f">= {target:.0f}x {met}",
        )
    console.print(table)
    for peer in peers:
        console.print(f"  {peer.name}: {peer.note}")
    for note in notes:
        console.print(f"  {note}")
    console.print(
        "  issue's quoted peer figures on these machines: "
        + ", ".join(f"{k} ~{v:,.0f} bars/s" for k, v in QUOTED.items())
        + "; propdesk vs those: "
        + ", ".join(f"{result.bars_per_s / v:.1f}x" for v in QUOTED.values())
    )
    if problems:
        console.print("[bold red]CHECK FAILED[/]")
        for p in problems:
            console.print(f"  {p}")
        return 1
    console.print(
        f"[green]checks passed[/]: {len(mine)} round trips in every engine"
        + (", identical to backtrader trade by trade (times, prices, net PnL)" if not args.no_backtrader else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
