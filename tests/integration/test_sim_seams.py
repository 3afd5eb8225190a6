"""The simulated exchange at its seams, on the real ES 1-minute file (``../shared/data``, read in place):

* Labor Day 2025-09-01: CME equity futures halt at 12:00 CT and reopen at 17:00 CT (``model/resources/calendar.toml``
  over CMES); the file still has bars 12:00-15:59 CT (``../shared/data/README.md`` flags them). Nothing fills there,
  the period is reported once as a data warning.
* A 5-lot long near the MLL floor on 1-minute bars (``propdesk risk --broker sim --manual``, topstep-50k-combine:
  floor $48,000 with R1's $100 buffer): the breach inside a bar is flattened where the bar's path crossed the limit,
  not at a later bar's close.

Expected figures are read from the file by hand (bar prices quoted in the comments), not computed by the code.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from propdesk.backtest.cli_support import parse_window, with_contract
from propdesk.backtest.engine import BacktestConfig, run_backtest
from propdesk.brokers.sim import SimConfig
from propdesk.data.loaders import load_bars
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.risk_daemon.manual import load_manual_script
from propdesk.sessions.risk_daemon.session import SimRiskOptions, SimRiskSession
from propdesk.strategies.registry import build_strategy
from tests.conftest import ES_1MIN, resolve_shared

CT = ZoneInfo("America/Chicago")


def ct_ns(mo: int, d: int, h: int, mi: int = 0) -> int:
    return int(datetime(2025, mo, d, h, mi, tzinfo=CT).timestamp()) * 1_000_000_000


HALT, REOPEN = ct_ns(9, 1, 12), ct_ns(9, 1, 17)  # Labor Day: 12:00 CT halt, 17:00 CT reopen


def _risk_run(tmp_path: Path, manual: list[dict[str, Any]], start: str, end: str, **sim: Any) -> dict[str, Any]:
    script = tmp_path / "manual.jsonl"
    script.write_text("".join(json.dumps(m) + "\n" for m in manual), encoding="utf-8")
    start_ns, end_ns = parse_window(start, end)
    session = SimRiskSession(
        SimRiskOptions(
            replay=resolve_shared(ES_1MIN),
            config=load_risk_config("topstep-50k-combine", None),
            speed=None,
            start_ns=start_ns,
            end_ns=end_ns,
            manual=tuple(load_manual_script(script)),
            sim=SimConfig(**sim) if sim else None,
        )
    )
    return asyncio.run(session.run(handle_sigint=False))


def test_labor_day_no_fill_between_the_12_00_halt_and_the_17_00_reopen(tmp_path: Path) -> None:
    # 11:30 CT: a GTC buy limit at 6535.00 (a DAY order would expire at 16:00 CT, inside the halt). Before 12:00
    # the low is 6537.00; 12:00-15:59 CT the file's bars go down to 6530.50 (data after the halt); the 17:00 CT
    # reopen bar opens at 6528.50, through the limit.
    manual = [
        {
            "ts": "2025-09-01T11:30:00-05:00",
            "symbol": "ES",
            "side": "buy",
            "qty": 1,
            "type": "limit",
            "price": 6535.0,
            "tif": "gtc",
        },
    ]
    st = _risk_run(tmp_path, manual, "2025-09-01T15:00", "2025-09-02T00:00", calendar_check="data")
    fills = st["recent_fills"]
    assert [(f["client_order_id"], f["time_ct"], f["price"]) for f in fills] == [
        ("ext-manual-1", "2025-09-01 17:00:00 CT", "6528.5")
    ]
    assert not any(HALT < f["ts_ns"] < REOPEN for f in fills)
    warnings = st["data_warnings"]
    assert len(warnings) == 1  # one per closed period, not one per bar
    w = warnings[0]
    assert (w["start_ns"], w["end_ns"], w["kind"], w["records"]) == (HALT, REOPEN, "early close", 240)
    assert "2025-09-01 12:00 CT to 2025-09-01 17:00 CT" in w["message"]


def test_labor_day_backtest_trades_nothing_in_the_halt_and_reports_it() -> None:
    bars = with_contract(load_bars(resolve_shared(ES_1MIN)))  # ESZ5, the file's contract
    day = bars.between(ct_ns(9, 1, 9), ct_ns(9, 1, 19))
    result = run_backtest(day, build_strategy("sma_cross", {}), BacktestConfig(sim=SimConfig()))
    assert result.fills  # it trades before the halt and after the reopen
    assert not [f for f in result.fills if HALT < f.ts_event_ns < REOPEN]
    assert result.data_warnings == (
        "ESZ5: 240 market-data records inside a closed period (early close, 2025-09-01 12:00 CT to "
        "2025-09-01 17:00 CT by the trading calendar) were not traded",
    )
    assert result.to_json_dict()["data_warnings"] == list(result.data_warnings)


# 2025-09-19 (CT): a 5-lot long bought at 08:25 fills at that bar's open, 6709.25. R1 flattens at the MLL floor
# ($48,000) plus its $100 buffer: equity 48,100 = 50,000 - 5 x $50 x (6709.25 - p), p = 6701.65, so the first price
# on the tick grid at or below it is 6701.50 (equity $48,062.50). Bars (O H L C): 08:30 6707.00 6707.50 6701.75
# 6702.00 (low above the level); 08:31 6702.00 6703.00 6700.25 6702.50 (its path O -> H 6703.00 -> L 6700.25 crosses
# 6701.50); 08:33 6702.00 6702.00 6699.00 6699.75 (the first close below the level, where the flatten used to fill:
# equity $47,625.00, $375.00 below the floor). With one tick of slippage the entry fills at 6709.50, the level is
# p = 6701.90, first reached at 6701.75 on the 08:30 bar's path (O 6707.00 -> H 6707.50 -> L 6701.75), and the
# flatten fills one tick lower, at 6701.50: equity at the path point $48,062.50, less the flatten's slippage
# (1 tick x 5 lots x $12.50 = $62.50) gives $48,000.00.
MLL_MANUAL = [{"ts": "2025-09-19T08:25:00-05:00", "symbol": "ES", "side": "buy", "qty": 5, "type": "market"}]


@pytest.mark.parametrize(
    ("slippage", "entry", "at", "balance"),
    [(0, "6709.25", "2025-09-19 08:32:00 CT", "48062.50"), (1, "6709.5", "2025-09-19 08:31:00 CT", "48000.00")],
)
def test_mll_breach_inside_a_bar_is_flattened_at_the_path_point(
    tmp_path: Path, slippage: int, entry: str, at: str, balance: str
) -> None:
    st = _risk_run(tmp_path, MLL_MANUAL, "2025-09-19T13:00", "2025-09-19T15:00", slippage_ticks=slippage)
    fills = [(f["client_order_id"], f["time_ct"], f["side"], f["qty"], f["price"]) for f in st["recent_fills"]]
    assert fills == [
        ("ext-manual-1", "2025-09-19 08:25:00 CT", "BUY", 5, entry),
        ("sim-close-1", at, "SELL", 5, "6701.5"),  # inside the bar, stamped at its close
    ]
    assert st["state"] == "HALTED"
    assert st["mll_floor_usd"] == "48000.00"
    assert st["balance_usd"] == balance  # never below the floor: the buffer level, then only the flatten's slippage
