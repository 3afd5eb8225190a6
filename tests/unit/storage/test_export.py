"""CSV export of journaled fills and round trips."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from propdesk.model.enums import Side
from propdesk.storage import rows as rw
from propdesk.storage.db import create_engine_for
from propdesk.storage.export import FILL_COLUMNS, TRADE_COLUMNS, export_csv
from propdesk.storage.repositories import Repository

from .factories import ACCOUNT, T0, fill


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
        res = await export_csv(engine, tmp_path / "out", account_id=ACCOUNT)
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
