"""Shapes shared by the peer runners: one round trip (:class:`PeerTrade`) and one run (:class:`PeerResult`).

Prices are :class:`~decimal.Decimal` points converted exactly from the peer's float (every ES price is a multiple
of 0.25, so the float is exact); times are UTC nanoseconds (int); money is Decimal USD, summed exactly.
Also: the ES 1-minute file and its clean segment (``shared/data/README.md``), and a small command line used by
each runner's ``python -m`` entry point (prints a :class:`PeerResult` as JSON, so a bench script can run a peer in
another virtualenv).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from propdesk.model.data import BarSeries

ES_1MIN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "es_1min_topstepx_esz5"
ES_1MIN_FILE = ES_1MIN / "ES_1min_20250831_20251114.csv"
ES_SYMBOL = "ESZ5"
ES_POINT_VALUE = 50  # USD per point per contract, CME E-mini S&P 500 (https://www.cmegroup.com/markets/equities/sp/e-mini-sandp500.contractSpecs.html)
# shared/data/README.md: "Use 2025-09-14 23:00 onward" (file clock) = 2025-09-14 22:00 UTC; 61,989 bars.
ES_CLEAN_START_NS = 1_757_887_200_000_000_000  # 2025-09-14T22:00:00Z


def price_decimal(value: float) -> Decimal:
    """``value`` (points, a float) as the exact Decimal of its shortest repr (``6543.25`` -> ``Decimal('6543.25')``)."""
    return Decimal(repr(float(value)))


@dataclass(frozen=True, slots=True)
class PeerTrade:
    """One round trip of a peer backtest.

    Attributes:
        entry_ts_ns: UTC ns of the entry fill (for next-open fills: the open time of the bar it filled on).
        entry_price: entry fill price, points (Decimal, exact).
        exit_ts_ns: UTC ns of the exit fill.
        exit_price: exit fill price, points (Decimal, exact).
        qty: contracts, signed: positive for a long round trip, negative for a short one.
    """

    entry_ts_ns: int
    entry_price: Decimal
    exit_ts_ns: int
    exit_price: Decimal
    qty: int

    def pnl_usd(self, point_value: Decimal | int = ES_POINT_VALUE) -> Decimal:
        """``(exit - entry) * point_value * qty`` in USD, exact (no costs)."""
        return (self.exit_price - self.entry_price) * Decimal(point_value) * self.qty

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (prices as strings)."""
        return {
            "entry_ts_ns": self.entry_ts_ns,
            "entry_price": str(self.entry_price),
            "exit_ts_ns": self.exit_ts_ns,
            "exit_price": str(self.exit_price),
            "qty": self.qty,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PeerTrade:
        """Inverse of :meth:`to_dict`."""
        return cls(
            int(d["entry_ts_ns"]),
            Decimal(d["entry_price"]),
            int(d["exit_ts_ns"]),
            Decimal(d["exit_price"]),
            int(d["qty"]),
        )


def net_pnl_usd(trades: Iterable[PeerTrade], point_value: Decimal | int = ES_POINT_VALUE) -> Decimal:
    """Sum of :meth:`PeerTrade.pnl_usd` over ``trades``, USD, exact."""
    return sum((t.pnl_usd(point_value) for t in trades), Decimal(0))


@dataclass(frozen=True)
class PeerResult:
    """One peer's run over a bar series.

    Attributes:
        name: the peer and version, e.g. ``"backtrader 1.9.78.123"``.
        trades: closed round trips in time order (a position still open at the end is not included).
        net_pnl_usd: sum of the round trips' PnL, USD, exact (no commissions or fees).
        bars: bars fed to the peer.
        run_s: wall time of the peer's run call only (what is timed is said in ``note``), seconds.
        bars_per_s: ``bars / run_s``.
        note: what was timed and how fills were simulated.
    """

    name: str
    trades: tuple[PeerTrade, ...]
    net_pnl_usd: Decimal
    bars: int
    run_s: float
    bars_per_s: float
    note: str = field(default="", compare=False)

    def to_json(self) -> str:
        """The result as one JSON object (Decimals as strings)."""
        return json.dumps(
            {
                "name": self.name,
                "trades": [t.to_dict() for t in self.trades],
                "net_pnl_usd": str(self.net_pnl_usd),
                "bars": self.bars,
                "run_s": self.run_s,
                "bars_per_s": self.bars_per_s,
                "note": self.note,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PeerResult:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        return cls(
            name=d["name"],
            trades=tuple(PeerTrade.from_dict(t) for t in d["trades"]),
            net_pnl_usd=Decimal(d["net_pnl_usd"]),
            bars=int(d["bars"]),
            run_s=float(d["run_s"]),
            bars_per_s=float(d["bars_per_s"]),
            note=d.get("note", ""),
        )

    def summary(self) -> str:
        """One line: name, bars, bars/s, trade count and net PnL."""
        return (
            f"{self.name}: {self.bars:,} bars in {self.run_s:.3f} s = {self.bars_per_s:,.0f} bars/s; "
            f"{len(self.trades)} round trips, net PnL {self.net_pnl_usd} USD"
        )


def ns_to_utc(ts_ns: int) -> datetime:
    """UTC ns -> aware UTC datetime (microsecond resolution; for display)."""
    return datetime.fromtimestamp(ts_ns // 1_000 / 1e6, tz=UTC)


def load_es_bars(path: Path | str = ES_1MIN_FILE, *, clean: bool = False) -> BarSeries:
    """The ES 1-minute bars (UTC, start-stamped) through propdesk's loader; ``clean``: from 2025-09-14 22:00 UTC.

    Raises:
        DataError: the file is missing or malformed (propdesk's loader).
    """
    from propdesk.data.loaders import load_bars  # noqa: PLC0415  (propdesk is only needed by the CLI)

    bars = load_bars(path, symbol=ES_SYMBOL)
    return bars.between(ES_CLEAN_START_NS) if clean else bars


def cli_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the runners' common options: ``--file``, ``--clean``, ``--fast``, ``--slow``, ``--json``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--file", default=str(ES_1MIN_FILE), help="bar file (default: the ES 1-minute file)")
    p.add_argument("--clean", action="store_true", help="only the clean segment (2025-09-14 22:00 UTC onward)")
    p.add_argument("--fast", type=int, default=10)
    p.add_argument("--slow", type=int, default=30)
    p.add_argument("--json", action="store_true", help="print the PeerResult as JSON instead of a summary")
    p.add_argument("--trades", action="store_true", help="also print every round trip")
    return p.parse_args(argv)


def print_result(result: PeerResult, *, as_json: bool, trades: bool) -> None:
    """Print ``result`` as JSON or as a summary line (plus one line per round trip when ``trades``)."""
    if as_json:
        print(result.to_json())
        return
    print(result.summary())
    print(f"  ({result.note})")
    if trades:
        for t in result.trades:
            print(
                f"  {ns_to_utc(t.entry_ts_ns):%Y-%m-%d %H:%M} {t.entry_price} -> "
                f"{ns_to_utc(t.exit_ts_ns):%Y-%m-%d %H:%M} {t.exit_price} x{t.qty} = {t.pnl_usd()} USD"
            )
