"""A strategy's timeframe is honoured on finer data (issue 12, part 4): a 5-minute ``sma_cross`` run on 1-minute bars
(the node's streaming bar feeds build the 5-minute bars) trades exactly as the same strategy on 5-minute bars built
beforehand, by the vectorised aggregator or by the data vendor."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from propdesk.backtest.engine import BacktestConfig, BacktestResult, run_backtest
from propdesk.brokers.sim.config import SimConfig
from propdesk.cli import app
from propdesk.core.errors import ConfigError
from propdesk.data.aggregation import aggregate_bars
from propdesk.data.catalog import read_bar_file
from propdesk.data.loaders import load_bars
from propdesk.model.data import Bar, BarSeries, Timeframe
from propdesk.node import journaling
from propdesk.node.journaling import NodeJournal
from propdesk.sessions.replay import RunOptions, RunSession
from propdesk.strategies.base import Strategy, StrategyConfig
from propdesk.strategies.registry import STRATEGIES, build_strategy
from tests.conftest import ES_1MIN, NQ_1MIN, NQ_5MIN, resolve_shared

FIVE = Timeframe(5, "m")


@pytest.fixture(scope="module")
def es_1m() -> BarSeries:
    return load_bars(resolve_shared(ES_1MIN), symbol="ESZ5")


def _config() -> BacktestConfig:
    return BacktestConfig(sim=SimConfig(fill_model="next-open", slippage_ticks=0, commission_per_side_usd=Decimal(0)))


def _sma(**params: str) -> Strategy:
    return build_strategy("sma_cross", {"fast": "10", "slow": "30", **params})


def _assert_same_trades(ours: BacktestResult, ref: BacktestResult) -> None:
    assert len(ours.trips) == len(ref.trips) > 50
    for mine, theirs in zip(ours.trips, ref.trips, strict=True):
        assert (mine.entry_ts_ns, mine.exit_ts_ns) == (theirs.entry_ts_ns, theirs.exit_ts_ns)
        assert (mine.entry_price, mine.exit_price) == (theirs.entry_price, theirs.exit_price)
        assert (mine.direction, mine.qty) == (theirs.direction, theirs.qty)
    assert ours.metrics.net_pnl == ref.metrics.net_pnl
    assert ours.open_qty == ref.open_qty


@pytest.mark.slow
def test_five_minute_sma_cross_on_es_1m_trades_as_on_vectorised_5m_bars(es_1m: BarSeries) -> None:
    five = aggregate_bars(es_1m, FIVE)
    ours = run_backtest(es_1m, _sma(timeframe="5m"), _config())
    ref = run_backtest(five, _sma(), _config())  # the default timeframe is the data's
    assert ref.timeframe == ours.timeframe == "5m"
    assert ours.to_json_dict()["data_timeframe"] == "1m"
    _assert_same_trades(ours, ref)


@pytest.mark.slow
def test_five_minute_sma_cross_on_nq_1m_with_missing_minutes_trades_as_on_the_vendor_5m_file() -> None:
    """FirstRateData omits minutes without trades (a 5-minute bar may lack any of its minutes); its 5-minute file is
    its 1-minute file resampled."""
    one = load_bars(resolve_shared(NQ_1MIN), symbol="NQZ3")
    vendor = load_bars(resolve_shared(NQ_5MIN), symbol="NQZ3")
    assert vendor.timeframe == FIVE
    ours = run_backtest(one, _sma(fast="5", slow="20", timeframe="5m"), _config())
    ref = run_backtest(vendor, _sma(fast="5", slow="20"), _config())
    _assert_same_trades(ours, ref)


T0 = 1_759_327_200_000_000_000  # 2025-10-01 14:00:00 UTC
MINUTE = 60_000_000_000


def _tiny_1m(skip: tuple[int, ...] = ()) -> BarSeries:
    """ES 1-minute bars from 2025-10-01 14:00 UTC (minute ``i`` opens at ``6700 + i``), without the minutes in
    ``skip`` (minutes without trades)."""
    keep = [i for i in range(12) if i not in skip]
    opens = [6700.0 + i for i in keep]
    return BarSeries(
        "ESZ5",
        Timeframe(1, "m"),
        [T0 + i * MINUTE for i in keep],
        [T0 + (i + 1) * MINUTE for i in keep],
        opens,
        [p + 0.5 for p in opens],
        [p - 0.25 for p in opens],
        [p + 0.25 for p in opens],
        [10] * len(keep),
    )


class _BuyFirstBar(Strategy):
    """Buys one contract on the close of its first bar."""

    name = "buy_first_bar"

    def on_bar(self, bar: Bar) -> None:
        if not self.sent:
            self.sent = True
            self.buy()

    sent = False


def test_a_bar_missing_its_last_minute_is_completed_before_the_next_minute_is_matched() -> None:
    """14:04 has no trades: the 14:00 5-minute bar is complete once the 14:05 minute opens; the order sent on its
    close (at 14:05) fills at the 14:05 minute's open, the next 5-minute bar's open, as on pre-aggregated bars."""
    one = _tiny_1m(skip=(4,))
    ours = run_backtest(one, _BuyFirstBar(StrategyConfig(timeframe="5m")), _config())
    ref = run_backtest(aggregate_bars(one, FIVE), _BuyFirstBar(), _config())
    for result in (ours, ref):
        (fill,) = result.fills
        assert (fill.ts_event_ns, fill.price.as_decimal()) == (T0 + 5 * MINUTE, Decimal("6705.00"))


def test_a_timeframe_finer_than_the_data_is_a_clear_error() -> None:
    five = aggregate_bars(_tiny_1m(), FIVE)
    with pytest.raises(ConfigError, match=r"strategy sma_cross: .*1m bars cannot be built from 5m data"):
        run_backtest(five, _sma(timeframe="1m"), _config())
    with pytest.raises(ConfigError, match=r"not a whole multiple"):
        run_backtest(_tiny_1m(), _sma(timeframe="90s"), _config())


def test_a_malformed_timeframe_parameter_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"timeframe: .*5x"):
        _sma(timeframe="5x")


class _Recorder(Strategy):
    """Trades nothing; records every bar it receives, by timeframe, and the 15-minute bars through a handler."""

    name = "recorder"

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        self.seen: list[Bar] = []
        self.quarter: list[Bar] = []

    def on_start(self) -> None:
        self.subscribe_bars("1d")
        self.subscribe_bars("15m", self.quarter.append)

    def on_bar(self, bar: Bar) -> None:
        self.seen.append(bar)


def _fields(bars: list[Bar]) -> list[tuple[object, ...]]:
    return [(str(b.timeframe), b.ts_open_ns, b.ts_close_ns, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def _series_fields(s: BarSeries) -> list[tuple[object, ...]]:
    return _fields(list(s))


def test_extra_timeframes_reach_on_bar_or_their_handler_as_the_vectorised_aggregator_builds_them(
    es_1m: BarSeries,
) -> None:
    """Two days of ES: the strategy's own 5-minute bars and its CME-session days go to ``on_bar`` in time order
    (a session's day bar between its last 5-minute bar, before the 16:00 CT halt, and the next session's first), its
    15-minute bars to their handler; a bar the data ends inside is not emitted."""
    start = 1_759_269_600_000_000_000  # 2025-09-30 22:00 UTC (17:00 CT, session open)
    window = es_1m.between(start, start + 2 * 86_400_000_000_000 + 3_600_000_000_000)
    rec = _Recorder(StrategyConfig(timeframe="5m"))
    run_backtest(window, rec, _config())
    five = [b for b in rec.seen if b.timeframe == FIVE]
    days = [b for b in rec.seen if b.timeframe == Timeframe(1, "d")]
    last_close = int(window.ts_close_ns[-1])

    def complete(s: BarSeries) -> list[tuple[object, ...]]:
        return [f for f in _series_fields(s) if int(f[2]) <= last_close]  # type: ignore[call-overload]

    assert _fields(five) == complete(aggregate_bars(window, FIVE))
    assert _fields(rec.quarter) == complete(aggregate_bars(window, Timeframe(15, "m")))
    assert _fields(days) == complete(aggregate_bars(window, Timeframe(1, "d")))
    assert len(days) == 2
    day_close = days[0].ts_close_ns
    i = next(k for k, b in enumerate(rec.seen) if b.timeframe.unit == "d")
    assert rec.seen[i - 1].ts_close_ns == day_close - 3_600_000_000_000  # 16:00 CT: the halt
    assert rec.seen[i + 1].ts_open_ns == day_close  # 17:00 CT: the next session's first 5-minute bar


def test_a_replay_of_1m_bars_for_a_5m_strategy_fills_as_the_backtest(es_1m: BarSeries) -> None:
    """``run --replay`` (the same node on the replay feed) with ``timeframe=5m`` on a week of 1-minute ES bars from
        which the minute before each of the first fills is removed (5-minute bars without their last minute, closing on
        a signal): the backtest's fills, fill for fill, some of them at the open of the minute after such a gap; and the
    trades of the 5-minute bars built beforehand from the same minutes."""
    start = 1_759_269_600_000_000_000  # 2025-09-30 22:00 UTC
    week = es_1m.between(start, start + 7 * 86_400_000_000_000)
    params = {"fast": "3", "slow": "8", "timeframe": "5m"}
    full = run_backtest(week, build_strategy("sma_cross", params), _config())
    gaps = [f.ts_event_ns - MINUTE for f in full.fills[:20]]
    keep = ~np.isin(week.ts_open_ns, gaps)
    bars = BarSeries(
        week.symbol,
        week.timeframe,
        week.ts_open_ns[keep],
        week.ts_close_ns[keep],
        week.open[keep],
        week.high[keep],
        week.low[keep],
        week.close[keep],
        week.volume[keep],
    )
    backtest = run_backtest(bars, build_strategy("sma_cross", params), _config())
    options = RunOptions(replay=resolve_shared(ES_1MIN), strategy="sma_cross", params=params, speed=None)
    summary = asyncio.run(RunSession(options, bars=bars).run(handle_sigint=False))
    assert len(backtest.fills) > 100
    assert sum(1 for f in backtest.fills if f.ts_event_ns - MINUTE in gaps) >= 5
    assert [(f.side, f.qty, f.price, f.ts_event_ns) for f in summary.fills] == [
        (f.side, f.qty, f.price, f.ts_event_ns) for f in backtest.fills
    ]
    assert summary.trips == backtest.trips
    ref = run_backtest(aggregate_bars(bars, FIVE), build_strategy("sma_cross", {"fast": "3", "slow": "8"}), _config())
    _assert_same_trades(backtest, ref)


def test_cli_resample_reproduces_the_vendor_5m_file_and_backtest_reads_it(tmp_path: Path) -> None:
    """``propdesk data resample`` on FirstRateData's NQ 1-minute sample writes a Parquet bar file equal, bar for bar
    and field for field, to the vendor's own 5-minute file; ``backtest --data`` on it trades as on the vendor file."""
    out = tmp_path / "nq5.parquet"
    res = CliRunner().invoke(
        app, ["data", "resample", str(resolve_shared(NQ_1MIN)), "--timeframe", "5m", "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert (info["bars"], info["input_bars"], info["timeframe"]) == (2943, 14714, "5m")
    ours = read_bar_file(out)
    vendor = load_bars(resolve_shared(NQ_5MIN))
    assert (ours.symbol, ours.timeframe) == ("NQ", FIVE)
    for col in ("ts_open_ns", "ts_close_ns", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(ours, col), getattr(vendor, col))
    args = ["backtest", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=20", "--json"]
    from_file = json.loads(CliRunner().invoke(app, [*args, "--data", str(out)]).stdout)
    from_vendor = json.loads(CliRunner().invoke(app, [*args, "--data", str(resolve_shared(NQ_5MIN))]).stdout)
    for key in ("bars", "trades", "net_pnl_usd", "timeframe"):
        assert from_file[key] == from_vendor[key]


def test_cli_backtest_on_finer_data_and_the_finer_than_data_error(tmp_path: Path) -> None:
    nq = str(resolve_shared(NQ_5MIN))
    res = CliRunner().invoke(app, ["backtest", "--data", nq, "--strategy", "sma_cross", "--param", "timeframe=1m"])
    assert res.exit_code == 2
    assert "strategy sma_cross: NQ" in res.stderr and "1m bars cannot be built from 5m data" in res.stderr
    res = CliRunner().invoke(app, ["data", "resample", nq, "--timeframe", "1m", "--out", str(tmp_path / "x.parquet")])
    assert res.exit_code == 2 and "1m bars cannot be built from 5m data" in res.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_cme_session_day_strategy_on_1m_trades_as_on_vectorised_daily_bars(es_1m: BarSeries) -> None:
    """``timeframe=1d``: the session closing at 17:00 CT is complete when the next session's first minute opens
    (the hour before is the halt); the order sent on its close is accepted (its close is market data, as a
    pre-aggregated day's) and fills at that minute's open, the next day's open."""
    params = {"fast": "2", "slow": "3"}
    ours = run_backtest(es_1m, build_strategy("sma_cross", {**params, "timeframe": "1d"}), _config())
    ref = run_backtest(aggregate_bars(es_1m, Timeframe(1, "d")), build_strategy("sma_cross", params), _config())
    assert len(ref.trips) == 6
    assert [(f.side, f.price, f.ts_event_ns) for f in ours.fills] == [
        (f.side, f.price, f.ts_event_ns) for f in ref.fills
    ]
    assert ours.trips == ref.trips


class _FinerAtInit(Strategy):
    """Trades nothing; wants 1-minute bars besides its own (registered in ``__init__``)."""

    name = "finer_at_init"

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        self.subscribe_bars("1m")

    def on_bar(self, bar: Bar) -> None:
        pass


class _FinerAtStart(Strategy):
    """Trades nothing; wants 1-minute bars besides its own (registered in ``on_start``)."""

    name = "finer_at_start"

    def on_start(self) -> None:
        self.subscribe_bars("1m")

    def on_bar(self, bar: Bar) -> None:
        pass


def _run_statuses(db: Path) -> list[str]:
    """The status of every run on the SQLite journal ``db`` (none when it has no runs table)."""
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("strategy_runs"):
                return []
            return [str(r[0]) for r in conn.execute(text("SELECT status FROM strategy_runs"))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("strategy", [_FinerAtInit, _FinerAtStart])
@pytest.mark.parametrize("command", ["backtest", "run"])
def test_an_extra_timeframe_finer_than_the_data_fails_cleanly_and_leaves_no_run_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, strategy: type[Strategy], command: str
) -> None:
    """``backtest --journal`` / ``run --replay`` of a strategy whose ``subscribe_bars`` (in ``__init__`` or
    ``on_start``) wants 1-minute bars of 5-minute data: one clear line, exit 2, and no run left ``running`` on the
    journal (absent when registered in ``__init__``: refused before anything starts; else marked failed), the
    journal closed."""
    monkeypatch.setitem(STRATEGIES, strategy.name, strategy)
    opened: list[NodeJournal] = []

    class _Kept(NodeJournal):
        """The CLI's journal, kept to look at after the command."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(journaling, "NodeJournal", _Kept)
    db = tmp_path / "journal.sqlite3"
    data = str(resolve_shared(NQ_5MIN))
    url = ["--journal-url", f"sqlite:///{db}"]
    if command == "backtest":
        args = ["backtest", "--data", data, "--strategy", strategy.name, *url]
    else:
        args = ["run", "--replay", data, "--strategy", strategy.name, "--speed", "max", "--no-console", *url]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output
    assert f"strategy {strategy.name}: NQ" in lines[0] and "1m bars cannot be built from 5m data" in lines[0]
    assert len(opened) == 1 and not opened[0].journal.running  # closed: its writer process stopped
    # registered in __init__: refused before the run is opened; in on_start: the opened run is marked failed
    assert _run_statuses(db) == ([] if strategy is _FinerAtInit else ["failed"])
