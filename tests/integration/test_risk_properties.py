"""Property tests of the risk engine (issue 4, "Tests"): after any sequence of strategy orders, manual fills at the
broker and price moves that breaches a flatten rule, the account is flat and locked within a bounded number of
events, and no order that the pre-trade gate denied ever reached the broker.

The account is a Topstep 50K Combine (R1 MLL and the rest of the preset) with a tight personal daily loss limit of
$250 (R3: flatten and lock out at a day net of -$150 with the $100 buffer), on a real TradingNode + SimBroker +
RiskEngine at a Tuesday 09:00 CT. The broker records every ``submit_order`` call (:class:`RecordingSimBroker`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from propdesk.model.enums import Side
from propdesk.model.orders import OrderStatus
from propdesk.risk.decisions import Action, TradingState
from propdesk.risk.events import RuleBreached
from tests.integration.risk_rig import ACCOUNT, TICK, RiskRig, ct_ns

SYMBOLS = ("ESZ5", "MESZ5")
CONFIG = 'preset = "topstep-50k-combine"\n\n[rules.personal_daily_loss]\namount = 250\n'
QUIET_EVENTS = 2
"""Price events (with no new orders) after which the account must be flat and locked once a flatten rule broke."""


@dataclass(frozen=True)
class StrategyOrder:
    symbol: str
    side: Side
    qty: int


@dataclass(frozen=True)
class ManualOrder:
    symbol: str
    side: Side
    qty: int


@dataclass(frozen=True)
class Move:
    symbol: str
    ticks: int


sym = st.sampled_from(SYMBOLS)
side = st.sampled_from((Side.BUY, Side.SELL))
qty = st.integers(min_value=1, max_value=3)
step = st.one_of(
    st.builds(StrategyOrder, sym, side, qty),
    st.builds(ManualOrder, sym, side, qty),
    st.builds(Move, sym, st.integers(min_value=-40, max_value=40)),
)


def flatten_breaches(rig: RiskRig) -> list[RuleBreached]:
    """Breaches whose action flattens the account (FLATTEN or LOCKOUT)."""
    return [b for b in rig.of(RuleBreached) if b.decision.action >= Action.FLATTEN]


def assert_flat_and_locked(rig: RiskRig) -> None:
    assert rig.is_flat(), (rig.sim.account.positions, rig.node.orders.open_orders())
    assert rig.state() is TradingState.HALTED
    assert rig.store.load_active(ACCOUNT, rig.clock.timestamp_ns()), "the lockout is not in the store"


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=6, max_size=30))
def test_a_flatten_breach_ends_flat_and_locked_and_denied_orders_never_reach_the_broker(steps: list[object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rig = RiskRig(Path(tmp), CONFIG, ct_ns(2025, 10, 14, 9, 0), check_interval_s=60)
        px = dict.fromkeys(SYMBOLS, 6000.0)
        for s in SYMBOLS:
            rig.tick(s, px[s])
        broke_at: int | None = None
        for i, action in enumerate(steps):
            if isinstance(action, StrategyOrder):
                om = rig.node.orders
                om.submit(om.market(action.symbol, action.side, action.qty, "prop"))
            elif isinstance(action, ManualOrder):
                rig.manual(action.symbol, action.side, action.qty)
            elif isinstance(action, Move):
                px[action.symbol] += action.ticks * TICK
                rig.tick(action.symbol, px[action.symbol])
            if broke_at is None and flatten_breaches(rig):
                broke_at = i
                # the enforcement ran inside the breaching event: cancel all, close all, lockout persisted
                assert_flat_and_locked(rig)
        for _ in range(QUIET_EVENTS):  # orders still working (a manual one placed while HALTED) fill, and are closed
            for s in SYMBOLS:
                rig.tick(s, px[s])
        if broke_at is not None or flatten_breaches(rig):
            event("a flatten rule broke")
            assert_flat_and_locked(rig)
        event(f"{len(rig.denied)} orders denied" if rig.denied else "no order denied")

        denied = {str(d.client_order_id) for d in rig.denied}
        assert not denied & rig.sim.submitted_ids()
        for cid in denied:
            order = rig.node.orders.order(cid)
            assert order is not None and order.status is OrderStatus.DENIED
