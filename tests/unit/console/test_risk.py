"""The Rich risk views: the live risk panel fits 80 columns and says the state, the MLL floor and distance, the
daily loss left and the next reset in CT; routine halts of one rule fold into one timeline row."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel

from propdesk.console.risk import fold_halts, risk_panel
from propdesk.risk.outcomes import Halt

STATUS = {
    "state": "HALTED",
    "reasons": [
        "lockout R1 until 2025-09-17T22:00:00Z: equity $50,087.50 reached the MLL floor $50,000.00 plus the $100.00 "
        "buffer; flatten and lock out",
        "lockout R11 until 2025-09-17T22:00:00Z: flat time 2025-09-17 15:05 CT reached: flatten and lock out until "
        "2025-09-17 17:00 CT",
    ],
    "equity_usd": "50087.50",
    "mll_floor_usd": "50000.00",
    "day_net_usd": "-412.50",
    "daily_loss_left_usd": "587.50",
    "daily_loss_rule": "R3",
    "next_reset_ns": 1_758_146_400_000_000_000,  # 2025-09-17 22:00 UTC = 17:00 CT
}


def test_risk_panel_fits_80_columns_and_states_the_figures() -> None:
    console = Console(width=80, record=True, color_system=None)
    console.print(Panel(risk_panel(STATUS), title="risk"))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    flat = " ".join(" ".join(line.strip("│ ").split()) for line in lines)
    assert "state HALTED" in flat
    assert "MLL floor $50,000.00 (equity $50,087.50, $87.50 above)" in flat
    assert "daily loss left $587.50 (R3)" in flat
    assert "next reset 2025-09-17 17:00 CT" in flat
    assert "T22:00:00Z" not in flat  # the guard's lockout prefix is dropped


def test_risk_panel_without_a_daily_loss_rule() -> None:
    console = Console(width=80, record=True, color_system=None)
    console.print(risk_panel({**STATUS, "daily_loss_left_usd": None, "daily_loss_rule": None}))
    assert "no daily loss limit" in console.export_text()


def test_routine_halts_of_one_rule_fold_into_one_row() -> None:
    def h(a: int, b: int | None, rule: str) -> Halt:
        return Halt(state="HALTED", start_ns=a, end_ns=b, rule_id=rule, reason=rule)

    halts = [h(1, 2, "R11"), h(3, 4, "R11"), h(5, 6, "R11"), h(7, None, "R1")]
    folded = fold_halts(halts)
    assert [(f.start_ns, last.end_ns, n) for f, last, n in folded] == [(1, 6, 3), (7, None, 1)]
