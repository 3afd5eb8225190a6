"""RiskEngine.path_breach_tick: the first price of a bar-path segment at which the QUOTE rules would flatten, found on
a what-if mark that leaves no trace (the simulated exchange stops its bar walk there; see test_sim_seams.py for the
whole flow on the real ES file)."""

from __future__ import annotations

from pathlib import Path

from propdesk.model.enums import Side
from tests.integration.risk_rig import RiskRig, ct_ns

COMBINE = 'preset = "topstep-50k-combine"\n'
TICK = 0.25


def ticks(px: float) -> int:
    return round(px / TICK)


def test_breach_tick_is_the_first_tick_past_the_buffered_mll_floor_and_leaves_no_trace(tmp_path: Path) -> None:
    rig = RiskRig(tmp_path, COMBINE, ct_ns(2025, 10, 14, 9, 0))
    rig.advance(1)
    rig.trade("ESZ5", 6700.0)
    rig.manual("ESZ5", Side.BUY, 5)
    rig.advance(1)
    rig.trade("ESZ5", 6700.0)  # bars carry no quotes: the last trade is the mark
    assert rig.qty("ESZ5") == 5
    state = rig.engine.state
    before = (state.equity, state.day_net, state.day_peak_equity, state.mll_floor)
    # R1 flattens at the floor $48,000 plus its $100 buffer: 50,000 - 5 x $50 x (6700 - p) = 48,100 at p = 6692.40;
    # the first tick at or below it is 6692.25
    assert rig.engine.path_breach_tick("ESZ5", ticks(6700.0), ticks(6690.0), TICK) == ticks(6692.25)
    assert rig.engine.path_breach_tick("ESZ5", ticks(6700.0), ticks(6692.5), TICK) is None  # not reached
    assert rig.engine.path_breach_tick("ESZ5", ticks(6700.0), ticks(6710.0), TICK) is None  # the wrong way
    assert (state.equity, state.day_net, state.day_peak_equity, state.mll_floor) == before
    assert str(rig.node.positions.mark_price("ESZ5", 5)) == "6700"  # the mark is back where it was
