"""CSV export of journaled fills and round trips."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from propdesk.execution.round_trips import RoundTrip, round_trips
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.symbology import spec_for_symbol
from propdesk.storage import rows as rw
from propdesk.storage.db import create_engine_for
from propdesk.storage.export import FILL_COLUMNS, TRADE_COLUMNS, export_csv
from propdesk.storage.repositories import Repository

from .factories import ACCOUNT, T0, fill


def _trips(fills: list[OrderFilled]) -> list[RoundTrip]:
    return round_trips(fills, spec_for_symbol)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.asyncio
async def test_export_fills_and_trades(db_url: str, tmp_path: Path) -> None:
    # ES: tick 0.25 = $12.50. Long 1 @ 6500.00, add 1 @ 6501.00, sell 2 @ 6502.25 -> (9 + 5) ticks = $175.00 gross;
    # then short 1 @ 6502.25 (reversal part of nothing: a new sell), covered @ 6503.00 -> -3 ticks = -$37.50.
    fills = [
        fill("T1", cid="a", side=Side.BUY, qty=1, price="6500.00", fee="1.40", ts=T0),
        fill("T2", cid="b", side=Side.BUY, qty=1, price="6501.00", fee="1.40", ts=T0 + 1),
        fill("T3", cid="c", side=Side.SELL, qty=3, price="6502.25", fee="4.20", ts=T0 + 2),
        fill("T4", cid="d", side=Side.BUY, qty=1, price="6503.00", fee="1.40", ts=T0 + 3),
        fill("X1", cid="e", side=Side.BUY, qty=1, price="6500.00", ts=T0 + 4, account=99),  # other account, left open
    ]
    engine = create_engine_for(db_url)
    try:
        await Repository(engine).write(("fills", rw.fill_row(f)) for f in fills)
        res = await export_csv(engine, tmp_path / "out", account_id=ACCOUNT, trips_of=_trips)
    finally:
        await engine.dispose()
    assert (res.fills, res.trades) == (4, 2)
    frows = _read(res.fills_path)
    assert tuple(frows[0]) == FILL_COLUMNS
    assert [r["trade_id"] for r in frows] == ["T1", "T2", "T3", "T4"]
    assert frows[2]["side"] == "SELL" and frows[2]["price"] == "6502.25" and frows[2]["fee_usd"] == "4.20"
    assert frows[0]["time_utc"].startswith("2025-11-13T02:13:20")
    trows = _read(res.trades_path)
    assert tuple(trows[0]) == TRADE_COLUMNS
    first, second = trows
    assert (first["direction"], first["qty"], first["entry_price"], first["exit_price"]) == (
        "LONG",
        "2",
        "6500.5",
        "6502.25",
    )
    assert first["gross_pnl_usd"] == "175.00"
    assert (second["direction"], second["gross_pnl_usd"]) == ("SHORT", "-37.50")
    # the fees add up: 1.40 + 1.40 + 4.20 (split 2:1 over the reversal) + 1.40
    total_fees = sum(int(r["fees_usd"].replace(".", "")) for r in trows)
    assert total_fees == 840


@pytest.mark.asyncio
async def test_trades_are_built_per_venue_session(db_url: str, tmp_path: Path) -> None:
    """Two simulated runs on the same account overlap in time and reuse trade ids: each run's fills form their own
    round trips (ES: 4 ticks = $50.00 in the first, 8 ticks = $100.00 in the second)."""
    runs = {
        "run-a": [("1-1", Side.BUY, "6500.00", T0), ("1-2", Side.SELL, "6501.00", T0 + 10)],
        "run-b": [("1-1", Side.BUY, "6600.00", T0 + 5), ("1-2", Side.SELL, "6602.00", T0 + 15)],
    }
    rows = [
        ("fills", rw.fill_row(fill(t, side=s, price=p, fee="0", ts=ts), run_id=run, venue_session=run))
        for run, fs in runs.items()
        for t, s, p, ts in fs
    ]
    rows += [
        ("strategy_runs", rw.strategy_run_row(run_id=run, kind="replay", strategy="sma", symbol="ESZ5", started_ns=T0))
        for run in runs
    ]
    engine = create_engine_for(db_url)
    try:
        await Repository(engine).write(rows)
        res = await export_csv(engine, tmp_path / "out", trips_of=_trips)
        one = await export_csv(engine, tmp_path / "one", run_id="run-b", trips_of=_trips)
    finally:
        await engine.dispose()
    trades = _read(res.trades_path)
    assert [(t["venue_session"], t["gross_pnl_usd"], t["entry_price"]) for t in trades] == [
        ("run-a", "50.00", "6500"),
        ("run-b", "100.00", "6600"),
    ]
    assert [(f["trade_id"], f["run_id"]) for f in _read(res.fills_path)] == [
        ("1-1", "run-a"), ("1-1", "run-b"), ("1-2", "run-a"), ("1-2", "run-b"),
    ]  # fmt: skip
    assert (one.fills, one.trades, one.run_id) == (2, 1, "run-b")
