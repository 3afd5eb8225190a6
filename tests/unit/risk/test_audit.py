"""Tests for the risk audit log (propdesk.risk.audit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from propdesk.core.bus import MessageBus
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import OrderType
from propdesk.model.price import Money
from propdesk.model.records import AuditEntry, scrub
from propdesk.risk.audit import (
    AuditLog,
    BusAuditLog,
    JsonLinesAuditLog,
    MultiAuditLog,
    RingAuditLog,
    order_inputs,
    safe_record,
    view_inputs,
    worst_case_exposure,
)
from propdesk.risk.events import RiskDecisionLogged
from tests.unit.risk.rules.stub_view import StubView, new, order, pos, usd

A = AccountId(1)


def entry(point: str = "pre", **kw: object) -> AuditEntry:
    base: dict[str, object] = {"ts_ns": 5, "account": A, "point": point, "action": "DENY", "state": "ACTIVE"}
    base.update(kw)
    return AuditEntry(**base)  # type: ignore[arg-type]


def test_ring_keeps_the_last_entries_and_filters() -> None:
    ring = RingAuditLog(capacity=3)
    assert isinstance(ring, AuditLog)
    for i in range(5):
        ring.record(entry("fill" if i % 2 else "enforce", ts_ns=i, step="verify" if i == 4 else ""))
    assert [e.ts_ns for e in ring.entries()] == [2, 3, 4]
    assert [e.ts_ns for e in ring.entries(point="fill")] == [3]
    assert [e.ts_ns for e in ring.entries(step="verify")] == [4]
    assert len(ring) == 3
    with pytest.raises(ValueError):
        RingAuditLog(0)


def test_json_lines_round_trip_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "risk.jsonl"
    sink = JsonLinesAuditLog(path)
    sink.record(
        entry(
            reasons=("R3: day net -510.00 <= -500.00",),
            inputs={"day_net": "-510.00", "api_key": "s3cr3t", "nested": {"Token": "x", "qty": 2}, "m": Money.of(3)},
        )
    )
    sink.record(entry("enforce", step="close_position", action="CLOSE_POSITION"))
    sink.close()
    rows = JsonLinesAuditLog.read(path)
    assert [r["point"] for r in rows] == ["pre", "enforce"]
    assert rows[0]["verdict"] == {"action": "DENY", "state": "ACTIVE", "reasons": ["R3: day net -510.00 <= -500.00"]}
    assert rows[0]["inputs"] == {"day_net": "-510.00", "nested": {"qty": 2}, "m": "3.00"}
    assert "s3cr3t" not in path.read_text()
    assert rows[1]["step"] == "close_position"
    with pytest.raises(ValueError, match="closed"):
        sink.record(entry())


def test_scrub_recurses_into_lists() -> None:
    assert scrub({"a": [{"password": 1, "b": 2}], "Authorization": "Bearer x"}) == {"a": [{"b": 2}]}


class Broken:
    def record(self, entry: AuditEntry) -> None:
        raise OSError("disk full")


def test_a_failing_sink_never_raises_and_does_not_stop_the_others() -> None:
    ring = RingAuditLog()
    multi = MultiAuditLog([Broken(), ring])
    multi.record(entry())
    safe_record(Broken(), entry())
    safe_record(None, entry())
    assert len(ring) == 1


def test_bus_sink_publishes_decision_logged() -> None:
    bus = MessageBus(timing=False)
    got: list[RiskDecisionLogged] = []
    bus.subscribe("events.risk.*", got.append)
    BusAuditLog(bus).record(entry())
    assert len(got) == 1 and got[0].entry.point == "pre" and got[0].topic == "events.risk.decision_logged"


def test_worst_case_exposure_counts_working_orders_per_side_and_micro_weights() -> None:
    # long 2 ES with a working buy 1 and sell 4: max(|2+1|, |2-4|) = 3 minis; MES short 5 = 0.5 mini;
    # a bracket child (parent set) is not counted.
    view = StubView(
        positions=[pos("ESH5", 2), pos("MESH5", -5)],
        working_orders=[
            order("ESH5", Side.BUY, 1),
            order("ESH5", Side.SELL, 4),
            order("MESH5", Side.BUY, 5, kind=OrderType.STOP, parent="E1"),
        ],
    )
    assert worst_case_exposure(view) == pytest.approx(3 + 0.5)


def test_view_inputs_are_exact_strings_and_survive_a_failing_property() -> None:
    class Failing(StubView):
        @property
        def equity(self) -> Money:
            raise RuntimeError("no marks")

    view = Failing(day_realized_net=usd("-400.25"), unrealized=usd("-100"), positions=[pos("ESH5", 1, upnl="-100")])
    got = view_inputs(view)
    assert got["day_net"] == "-500.25" and got["mll_floor"] == "48000.00"
    assert got["equity"].startswith("<error RuntimeError")
    assert got["positions"] == [["ESH5", 1, "5000", "-100.00"]]
    assert got["exposure"] == 1.0 and got["working_orders"] == 0


def test_order_inputs_describe_the_order() -> None:
    o = new("ESH5", Side.SELL, 2, kind=OrderType.STOP)
    d = order_inputs(o)
    assert d["side"] == "SELL" and d["qty"] == 2 and d["stop_price"] == "4990" and d["status"] == "initialized"


def test_multi_log_entries_come_from_its_ring(tmp_path: Path) -> None:
    ring = RingAuditLog(10)
    multi = MultiAuditLog([JsonLinesAuditLog(tmp_path / "a.jsonl"), ring])
    multi.record(entry("pre"))
    multi.record(entry("fill"))
    assert [e.point for e in multi.entries()] == ["pre", "fill"]
    assert [e.point for e in multi.entries(point="fill")] == ["fill"]
    assert MultiAuditLog([JsonLinesAuditLog(tmp_path / "b.jsonl")]).entries() == []
