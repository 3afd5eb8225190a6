"""Sanity tests of the peer runners in ``benchmarks/peers`` (backtrader: in the dev extras; Nautilus: if installed).

The ES 1-minute test checks backtrader's round trips against an oracle written here with numpy (SMAs from cumulative
sums, backtrader's ``CrossOver`` rule, next-open fills), not against the runner's own output.
"""

from __future__ import annotations

import itertools
import sys
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pytest

from benchmarks.peers.backtrader_sma import run_backtrader_sma
from benchmarks.peers.common import PeerResult, PeerTrade, net_pnl_usd
from benchmarks.peers.nautilus_sma import run_nautilus_sma
from propdesk.data.loaders import load_bars
from propdesk.model.data import BarSeries, Timeframe
from tests.conftest import ES_1MIN, resolve_shared

NS_MIN = 60_000_000_000
T0 = 1_757_887_200_000_000_000  # 2025-09-14 22:00 UTC


def _sma(close: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
    """SMA of the last ``n`` closes (NaN before bar n-1); exact on the 0.25 grid (the cumulative sums are exact)."""
    c = np.concatenate(([0.0], np.cumsum(close)))
    out = np.full(len(close), np.nan)
    out[n - 1 :] = (c[n:] - c[:-n]) / n
    return out


def _oracle_trades(bars: BarSeries, fast: int, slow: int) -> list[tuple[int, float, int, float]]:
    """(entry ts, entry price, exit ts, exit price) of backtrader's SMA cross with next-open fills."""
    f, s = _sma(bars.close, fast), _sma(bars.close, slow)
    trades: list[tuple[int, float, int, float]] = []
    nzd = float(np.sign(f[slow - 1] - s[slow - 1]))
    pos_entry: int | None = None  # bar index of the entry fill
    for t in range(slow, len(bars) - 1):  # an order sent on the last bar never fills
        d = f[t] - s[t]
        up, down = nzd < 0 and d > 0, nzd > 0 and d < 0
        if d != 0:
            nzd = float(np.sign(d))
        if pos_entry is None and up:
            pos_entry = t + 1
        elif pos_entry is not None and pos_entry <= t and down:
            trades.append(
                (
                    int(bars.ts_open_ns[pos_entry]),
                    float(bars.open[pos_entry]),
                    int(bars.ts_open_ns[t + 1]),
                    float(bars.open[t + 1]),
                )
            )
            pos_entry = None
    return trades


def _series(closes: list[float]) -> BarSeries:
    """1-minute bars from T0 with these closes; each open is the previous close + 0.25 (so open != prior close)."""
    c = np.array(closes, dtype=np.float64)
    o = np.concatenate(([c[0]], c[:-1] + 0.25))
    ts = T0 + NS_MIN * np.arange(len(c), dtype=np.int64)
    return BarSeries(
        "ESZ5",
        Timeframe.parse("1m"),
        ts,
        ts + NS_MIN,
        o,
        np.maximum(o, c) + 0.25,
        np.minimum(o, c) - 0.25,
        c,
        np.full(len(c), 10, dtype=np.int64),
    )


# fast=2, slow=3: fast-slow is -0.5 (seed), -1/6, +2/3 (bar 4: cross up), +5/6, 0 (bar 6: equal, no cross), -1 (bar 7:
# cross down), -5/6. Buy fills at bar 5's open (11 + 0.25), sell at bar 8's open (8 + 0.25): -3 points = -150 USD.
CLOSES = [10.0, 9.0, 8.0, 9.0, 11.0, 12.0, 10.0, 8.0, 7.0]


@pytest.fixture(scope="module")
def es_bars() -> BarSeries:
    return load_bars(resolve_shared(ES_1MIN), symbol="ESZ5")


@pytest.fixture(scope="module")
def es_result(es_bars: BarSeries) -> PeerResult:
    return run_backtrader_sma(es_bars, fast=10, slow=30, point_value=50)


def test_backtrader_es_matches_oracle(es_bars: BarSeries, es_result: PeerResult) -> None:
    expected = _oracle_trades(es_bars, 10, 30)
    assert len(expected) > 1000
    got = [(t.entry_ts_ns, float(t.entry_price), t.exit_ts_ns, float(t.exit_price)) for t in es_result.trades]
    assert got == expected


def test_backtrader_es_round_trips_are_consistent(es_bars: BarSeries, es_result: PeerResult) -> None:
    trades = es_result.trades
    assert es_result.bars == len(es_bars) == 75_791
    assert es_result.run_s > 0
    assert es_result.bars_per_s == pytest.approx(es_result.bars / es_result.run_s)
    assert es_result.name.startswith("backtrader ")
    opens = dict(zip(es_bars.ts_open_ns.tolist(), es_bars.open.tolist(), strict=True))
    for a, b in itertools.pairwise(trades):
        assert a.exit_ts_ns <= b.entry_ts_ns
    for t in trades:
        assert t.qty == 1
        assert t.entry_ts_ns < t.exit_ts_ns
        assert Decimal(opens[t.entry_ts_ns]) == t.entry_price  # next-open fills, at a bar's open time
        assert Decimal(opens[t.exit_ts_ns]) == t.exit_price
    total = sum(((t.exit_price - t.entry_price) * 50 * t.qty for t in trades), Decimal(0))
    assert es_result.net_pnl_usd == total == net_pnl_usd(trades, 50)
    assert isinstance(es_result.net_pnl_usd, Decimal)


def test_backtrader_hand_computed_cross() -> None:
    bars = _series(CLOSES)
    result = run_backtrader_sma(bars, fast=2, slow=3, point_value=50)
    assert result.trades == (PeerTrade(T0 + 5 * NS_MIN, Decimal("11.25"), T0 + 8 * NS_MIN, Decimal("8.25"), 1),)
    assert result.net_pnl_usd == Decimal(-150)


def test_backtrader_order_on_last_bar_never_fills() -> None:
    result = run_backtrader_sma(_series(CLOSES[:8]), fast=2, slow=3)  # the exit signal is on the last bar
    assert result.trades == ()
    assert result.net_pnl_usd == 0


def test_result_json_round_trip() -> None:
    result = run_backtrader_sma(_series(CLOSES), fast=2, slow=3)
    back = PeerResult.from_json(result.to_json())
    assert back == result
    assert back.trades[0].entry_price == Decimal("11.25")


def test_bad_periods_rejected() -> None:
    with pytest.raises(ValueError, match="fast < slow"):
        run_backtrader_sma(_series(CLOSES), fast=3, slow=3)


@pytest.mark.parametrize(
    ("module", "runner", "hint"),
    [("backtrader", run_backtrader_sma, "backtrader"), ("nautilus_trader", run_nautilus_sma, "nautilus_trader")],
)
def test_missing_peer_raises_clear_error(
    monkeypatch: pytest.MonkeyPatch, module: str, runner: object, hint: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` raise ImportError
    with pytest.raises(RuntimeError, match=rf"{hint} is not installed.*pip install -e \.\[bench\]"):
        runner(_series(CLOSES), 2, 3)  # type: ignore[operator]


def test_nautilus_hand_computed_cross() -> None:
    pytest.importorskip("nautilus_trader")  # only in the bench extra (needs pandas < 3)
    bars = _series(CLOSES)
    result = run_nautilus_sma(bars, fast=2, slow=3, point_value=50)
    # Nautilus fills the market order at the signal bar's close, stamped with that bar's close time.
    assert result.trades == (PeerTrade(T0 + 5 * NS_MIN, Decimal("11"), T0 + 8 * NS_MIN, Decimal("8"), 1),)
    assert result.net_pnl_usd == Decimal(-150)
