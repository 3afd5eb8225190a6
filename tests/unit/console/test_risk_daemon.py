"""Tests for the risk daemon's live status view (propdesk.console.risk_daemon): the rendered status of a daemon that
flattened a manual trade, the rule usage bars and the event lines."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from propdesk.console.risk_daemon import describe_risk_event, render_status, usage_bar
from propdesk.model.enums import Side
from propdesk.sessions.risk_daemon.session import FillRecord
from tests.unit.sessions.risk_daemon.test_risk_daemon import SYM, M, Rig, ct_ns


def test_status_view_shows_state_rules_lockouts_and_audit(tmp_path: Path) -> None:
    t0 = ct_ns(2025, 10, 15, 9, 0)
    rig = Rig(tmp_path, t0)
    rig.daemon.start()
    rig.bar(t0, 6700.0)
    rig.manual(Side.BUY, 2)
    rig.bar(t0 + M, 6699.0)
    rig.bar(t0 + 2 * M, 6690.0)
    console = Console(record=True, width=160, color_system=None)
    console.print(render_status(rig.daemon.status()))
    text = console.export_text()
    assert "HALTED" in text
    assert "R3 personal" in text and "R1 firm" in text
    assert "2025-10-15 17:00:00 CT" in text  # lockout expiry and next reset
    assert "sim-close-1" in text and "ext-manual-1" in text
    assert "enforce/close_position" in text
    rig.daemon.stop()


def test_usage_bar_and_event_lines() -> None:
    assert "50.0%" in usage_bar(0.5).plain and usage_bar(0.5).plain.count("█") == 10
    assert usage_bar(None).plain == "n/a"
    assert usage_bar(1.7).plain.count("░") == 0 and "170.0%" in usage_bar(1.7).plain
    rec = FillRecord(
        ts_ns=0,
        client_order_id="ext-manual-1",
        symbol=SYM,
        side="BUY",
        qty=2,
        price="6700",
        source="manual",
        position_before=0,
        position_after=2,
        state="ACTIVE",
    )
    assert describe_risk_event(rec) == "FILL [manual] BUY 2 ESZ5 @ 6700 (ext-manual-1) position +0 -> +2"
    closed = replace(rec, client_order_id="sim-close-1", side="SELL", source="risk", tag="risk:R11")
    assert describe_risk_event(closed).startswith("FILL [risk:R11] SELL 2 ESZ5")  # type: ignore[union-attr]
    assert closed.to_dict()["label"] == "risk:R11"
    restored = dataclasses.replace(rec, reconciled=True)
    assert describe_risk_event(restored) == (
        "FILL [manual, reconciled] BUY 2 ESZ5 @ 6700 (ext-manual-1) position +0 -> +2"
    )
    assert restored.to_dict()["reconciled"] is True and rec.to_dict()["reconciled"] is False
    assert describe_risk_event(object()) is None
