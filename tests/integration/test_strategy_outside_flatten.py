"""A strategy always knows its real position, on the real ES file (issue 12, part 1).

The risk engine flattens at the firm's flat time (R11, 15:05 CT). Its close fills carry ``risk:R11`` and close the
strategy's attributed position, so the strategy neither "reverses" out of a position it no longer holds nor waits
forever to close one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from propdesk.backtest.cli_support import with_contract
from propdesk.backtest.engine import BacktestConfig, BacktestResult, run_backtest
from propdesk.data.loaders.presets import load_bars
from propdesk.model.data import BarSeries
from propdesk.model.events import OrderFilled
from propdesk.risk.presets import load_risk_config
from propdesk.strategies.registry import build_strategy
from tests.conftest import ES_1MIN, resolve_shared

PRESET = "topstep-50k-combine"


@pytest.fixture(scope="module")
def es_bars() -> BarSeries:
    return with_contract(load_bars(resolve_shared(ES_1MIN)))


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def _run(bars: BarSeries, strategy: str, risk_toml: Path | None = None) -> BacktestResult:
    risk = load_risk_config(PRESET, risk_toml)
    return run_backtest(bars, build_strategy(strategy, {}), BacktestConfig(risk=risk))


def _net_path(fills: list[OrderFilled]) -> list[tuple[int, int]]:
    """``(fill time, account position after it)`` for every fill."""
    pos = 0
    out = []
    for f in fills:
        pos += f.signed_qty
        out.append((f.ts_event_ns, pos))
    return out


def test_trend_following_never_holds_more_than_its_size_after_the_flat_time_flatten(es_bars: BarSeries) -> None:
    result = _run(es_bars, "trend_following")
    path = _net_path(result.fills)
    assert max(abs(p) for _, p in path) == 1  # qty=1: never 2, never more
    # 2025-09-10: LONG 1 at 19:48 UTC, flattened by R11 at 20:05 UTC (15:05 CT), tagged with the rule
    flat_fill = next(f for f in result.fills if f.ts_event_ns == _ns("2025-09-10T20:05:00"))
    assert flat_fill.tag == "risk:R11" and flat_fill.side.name == "SELL" and flat_fill.qty == 1
    at_2208 = [p for ts, p in path if ts <= _ns("2025-09-10T22:08:00")][-1]
    assert abs(at_2208) <= 1
    # every enforcement fill names its rule; none is booked as manual
    assert {f.tag for f in result.fills} <= {"trend_following", "risk:R11"}
    assert result.open_qty == 0


def test_mean_reversion_trades_again_after_the_lockout_lifts(es_bars: BarSeries, tmp_path: Path) -> None:
    cfg = tmp_path / "risk.toml"
    cfg.write_text(f'preset = "{PRESET}"\n\n[rules.personal_daily_loss]\namount = 500\n', encoding="utf-8")
    result = _run(es_bars, "mean_reversion", cfg)
    flat_ns = _ns("2025-09-04T20:05:00")  # 15:05 CT: R11 flattens its short
    own_after = [f for f in result.fills if f.tag == "mean_reversion" and f.ts_event_ns > flat_ns]
    # the lockout lifts at 17:00 CT: the strategy enters again from the next sessions on, for weeks
    assert len(own_after) > 100
    assert own_after[0].ts_event_ns < _ns("2025-09-06T00:00:00")
    assert own_after[-1].ts_event_ns > _ns("2025-11-01T00:00:00")
    assert max(abs(p) for _, p in _net_path(result.fills)) == 1
    flattened = next(f for f in result.fills if f.ts_event_ns == flat_ns)
    assert flattened.tag == "risk:R11" and flattened.side.name == "BUY"


def test_the_journal_and_its_export_carry_the_rule_tag(tmp_path: Path) -> None:
    """``backtest --journal`` then ``db export``: the flat-time close is journaled as ``risk:R11`` and the strategy's
    round trip ends at it (2025-09-10, the reproducer's day)."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from propdesk.cli import app  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'journal.db'}"
    data = resolve_shared(ES_1MIN)
    runner = CliRunner()
    args = ["--data", str(data), "--strategy", "trend_following", "--risk", PRESET, "--journal-url", url]
    res = runner.invoke(app, ["backtest", *args, "--start", "2025-09-09", "--end", "2025-09-11T12:00"])
    assert res.exit_code == 0, res.stderr
    res = runner.invoke(app, ["db", "export", str(tmp_path / "out"), "--url", url])
    assert res.exit_code == 0, res.stderr
    fills = (tmp_path / "out" / "fills.csv").read_text(encoding="utf-8").splitlines()
    tags = {row.split(",")[10] for row in fills[1:]}
    assert "risk:R11" in tags and "manual" not in tags
    trades = (tmp_path / "out" / "trades.csv").read_text(encoding="utf-8").splitlines()
    assert trades[1:] and all(",trend_following," in row for row in trades[1:])  # no orphan risk round trip
