"""The risk daemon (a strategy-less node + the risk engine) on a SimClock with the SimBroker: manual (foreign) fills
go through the guard, a breach flattens and locks out until the next 17:00 CT, a manual trade placed while HALTED is
closed again as soon as it fills; the manual script parser; the status dict and its Rich view."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from propdesk.brokers.sim import SimBroker, SimConfig
from propdesk.core.clock import SimClock
from propdesk.core.errors import ConfigError, DataError
from propdesk.model.data import Bar, Timeframe
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType, TimeInForce
from propdesk.model.price import Money, Price
from propdesk.risk.audit import JsonLinesAuditLog
from propdesk.risk.decisions import TradingState
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.risk_daemon.manual import ManualOrder, ManualTrader, load_manual_script
from propdesk.sessions.risk_daemon.session import (
    RECENT_AUDIT,
    ProjectXRiskOptions,
    RiskDaemon,
    fill_source,
    projectx_broker,
)
from tests.stubs.desk import StubDesk

CT = ZoneInfo("America/Chicago")
SYM = "ESZ5"
TF = Timeframe.parse("1m")
M = 60_000_000_000
ACCOUNT = AccountId(3)


def ct_ns(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=CT).timestamp()) * 1_000_000_000


# ---------------------------------------------------------------------------------------------------------- script


def write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "manual.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_manual_script_is_parsed_and_sorted_by_time(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            "# orders typed into the broker's UI",
            '{"ts": "2025-10-16T12:40:00-05:00", "symbol": "ES", "side": "buy", "qty": 1, "type": "limit", '
            '"price": 6660.25}',
            "",
            '{"ts": "2025-10-16T14:30:00Z", "symbol": "ESZ5", "side": "SELL", "qty": 2, "type": "market"}',
            '{"ts": "2025-10-16T15:00:00", "symbol": "ESZ5", "side": "sell", "qty": 1, "type": "stop", '
            '"price": "6600.50", "tif": "gtc"}',
        ],
    )
    orders = load_manual_script(path)
    assert [o.line for o in orders] == [4, 5, 2]  # 09:30 CT, 10:00 CT (naive = UTC), 12:40 CT
    first, second, third = orders
    assert first.ts_ns == ct_ns(2025, 10, 16, 9, 30)
    assert (first.side, first.qty, first.order_type, first.price) == (Side.SELL, 2, OrderType.MARKET, None)
    assert second.ts_ns == ct_ns(2025, 10, 16, 10, 0)
    assert second.order_type is OrderType.STOP and second.price == Price.of("6600.50")
    assert second.tif is TimeInForce.GTC
    assert third.ts_ns == ct_ns(2025, 10, 16, 12, 40)
    assert third.price == Price.of("6660.25") and third.symbol == "ES"
    assert str(third.client_order_id) == "ext-manual-2"


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"ts": "2025-10-16T09:30:00Z", "symbol": "ES", "side": "long", "qty": 1, "type": "market"}', "side"),
        ('{"ts": "2025-10-16T09:30:00Z", "symbol": "ES", "side": "buy", "qty": 0, "type": "market"}', "qty"),
        ('{"ts": "2025-10-16T09:30:00Z", "symbol": "ES", "side": "buy", "qty": 1, "type": "limit"}', "price"),
        (
            '{"ts": "2025-10-16T09:30:00Z", "symbol": "ES", "side": "buy", "qty": 1, "type": "market", "price": 1}',
            "price",
        ),
        ('{"ts": "yesterday", "symbol": "ES", "side": "buy", "qty": 1, "type": "market"}', "ts"),
        ('{"ts": "2025-10-16T09:30:00Z", "symbol": "ES", "side": "buy", "qty": 1, "type": "iceberg"}', "type"),
        ('{"ts": "2025-10-16T09:30:00Z", "symbol": "ES", "side": "buy", "qty": 1, "type": "market", "x": 1}', "x"),
        ('{"ts": "2025-10-16T09:30:00Z", "side": "buy", "qty": 1, "type": "market"}', "symbol"),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_manual_line_names_the_file_and_the_line(tmp_path: Path, line: str, needle: str) -> None:
    ok = '{"ts": "2025-10-16T09:30:00Z", "symbol": "ES", "side": "buy", "qty": 1, "type": "market"}'
    path = write(tmp_path, [ok, line])
    with pytest.raises(DataError) as info:
        load_manual_script(path)
    assert info.value.row == 2
    assert info.value.path == path
    assert needle in str(info.value)


def test_a_missing_manual_script_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        load_manual_script(tmp_path / "nope.jsonl")


class Taker:
    """A stub broker that records what it is given."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.got: list[tuple[int, Order]] = []

    def submit_order(self, order: Order) -> None:
        self.got.append((self.clock.timestamp_ns(), order))


def test_manual_trader_places_each_order_at_its_time_straight_at_the_broker() -> None:
    t0 = ct_ns(2025, 10, 16, 9, 0)
    clock = SimClock(t0)
    taker = Taker(clock)
    orders = [
        ManualOrder(line=1, ts_ns=t0 + 30 * M, symbol="ES", side=Side.BUY, qty=2, order_type=OrderType.MARKET),
        ManualOrder(
            line=2,
            ts_ns=t0 + 90 * M,
            symbol="ESZ5",
            side=Side.SELL,
            qty=1,
            order_type=OrderType.STOP,
            price=Price.of("6600.25"),
        ),
    ]
    trader = ManualTrader(
        clock, taker, account_id=ACCOUNT, orders=orders, resolve_symbol=lambda s: "ESZ5" if s == "ES" else s
    )
    trader.arm()
    clock.advance_to(t0 + 29 * M)
    assert taker.got == [] and len(trader.pending) == 2
    clock.advance_to(t0 + 60 * M)
    assert len(taker.got) == 1
    at, first = taker.got[0]
    assert at == t0 + 30 * M
    assert (first.client_order_id, first.symbol, first.side, first.qty) == ("ext-manual-1", "ESZ5", Side.BUY, 2)
    assert first.tag == "manual" and first.account_id == ACCOUNT
    clock.advance_to(t0 + 120 * M)
    _, second = taker.got[1]
    assert second.order_type is OrderType.STOP and second.stop_price == Price.of("6600.25")
    assert second.limit_price is None
    assert trader.pending == [] and [o.line for o in trader.placed] == [1, 2]


# ---------------------------------------------------------------------------------------------------------- sources


def _fill(cid: str, side: Side, tag: str = "") -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId(cid),
        account_id=ACCOUNT,
        ts_event_ns=0,
        symbol=SYM,
        side=side,
        qty=1,
        price=Price.of("6700"),
        fee=Money(0),
        trade_id="t",
        tag=tag,
    )


def test_fill_source_tells_manual_risk_and_propdesk_fills_apart() -> None:
    assert fill_source(_fill("ext-manual-1", Side.BUY, "manual"), enforcing=False, position_before=0) == "manual"
    assert fill_source(_fill("ext-991", Side.BUY), enforcing=False, position_before=0) == "manual"
    assert fill_source(_fill("sim-close-1", Side.SELL, "manual"), enforcing=False, position_before=1) == "risk"
    assert fill_source(_fill("pd-x-4", Side.SELL, "risk"), enforcing=False, position_before=1) == "risk"
    # a reducing fill while an enforcement job is pending is the enforcement's close (ProjectX closeContract)
    assert fill_source(_fill("ext-77", Side.SELL), enforcing=True, position_before=2) == "risk"
    # ... but a fill that opens while enforcing is still the trader's
    assert fill_source(_fill("ext-78", Side.BUY), enforcing=True, position_before=2) == "manual"
    assert fill_source(_fill("pd-x-5", Side.BUY, "sma"), enforcing=False, position_before=0) == "propdesk"


# ---------------------------------------------------------------------------------------------------------- daemon


class Rig:
    """The daemon on a simulated account; bars are played as the replay feed plays them."""

    def __init__(self, tmp_path: Path, start_ns: int, toml: str = "[rules.personal_daily_loss]\namount = 500\n"):
        path = tmp_path / "risk.toml"
        path.write_text(toml, encoding="utf-8")
        self.config = load_risk_config("topstep-50k-combine", path)
        self.clock = SimClock(start_ns)
        self.sim = SimBroker(
            self.clock,
            account_id=ACCOUNT,
            config=SimConfig(flatten_fill="last-price", calendar_check="off"),
            starting_balance=Money.of(50_000),
        )
        self.audit_path = tmp_path / "audit.jsonl"
        self.daemon = RiskDaemon(
            self.sim,
            self.clock,
            self.config,
            new_account=True,
            bar_ns=M,
            roots=("ES",),
            audit_path=self.audit_path,
        )
        self.n = 0
        self.last = 6700.0

    def bar(self, ts_open: int, price: float) -> None:
        self.clock.advance_to(ts_open + M)
        b = Bar(SYM, TF, self.last, max(self.last, price), min(self.last, price), price, 100, ts_open, ts_open + M)
        self.sim.process_bar(b)
        self.daemon.node.publish_bar(b)
        self.last = price

    def manual(self, side: Side, qty: int) -> None:
        self.n += 1
        order = Order(ClientOrderId(f"ext-manual-{self.n}"), ACCOUNT, SYM, side, qty, OrderType.MARKET, tag="manual")
        self.sim.submit_order(order)


def test_a_manual_trade_that_breaches_is_flattened_locked_out_and_later_manual_trades_closed(tmp_path: Path) -> None:
    t0 = ct_ns(2025, 10, 15, 9, 0)  # a Wednesday
    rig = Rig(tmp_path, t0)
    d = rig.daemon
    d.start()
    assert d.engine.trading_state is TradingState.ACTIVE
    rig.bar(t0, 6700.0)
    rig.manual(Side.BUY, 2)  # by hand at the broker: fills at the next bar's open
    rig.bar(t0 + M, 6699.0)
    assert d.node.positions.net_qty(ACCOUNT, SYM) == 2
    assert [f.source for f in d.fills] == ["manual"]
    assert d.engine.trading_state is TradingState.ACTIVE  # -$100: under the limit, left alone
    rig.bar(t0 + 2 * M, 6690.0)  # 2 x 10 points x $50 = -$1,000 at the bar close
    assert d.engine.trading_state is TradingState.HALTED
    assert d.node.positions.net_qty(ACCOUNT, SYM) == 0
    closes = [f for f in d.fills if f.source == "risk"]
    assert len(closes) == 1 and closes[0].side == "SELL" and closes[0].qty == 2
    assert closes[0].client_order_id.startswith("sim-close-")
    [lo] = d.engine.guard.lockouts
    assert lo.rule_id == "R3" and lo.expires_at_ns == ct_ns(2025, 10, 15, 17, 0)
    assert d.engine.store.load_active(ACCOUNT, t0 + 3 * M) == [lo]  # in memory: the clock is a replayed one

    # the trader buys again by hand while HALTED: the broker takes it; the daemon closes it as soon as it fills
    rig.bar(t0 + 3 * M, 6691.0)
    rig.manual(Side.BUY, 1)
    rig.bar(t0 + 4 * M, 6692.0)
    opened, closed = d.fills[-2], d.fills[-1]
    assert (opened.source, opened.position_after, opened.state) == ("manual", 1, "HALTED")
    assert (closed.source, closed.side, closed.position_after) == ("risk", "SELL", 0)
    assert closed.ts_ns - opened.ts_ns <= M  # within the bar it filled in
    assert d.node.positions.net_qty(ACCOUNT, SYM) == 0

    st = d.status()
    assert st["state"] == "HALTED" and st["positions"] == []
    assert st["fills"] == {"manual": 2, "risk": 2, "propdesk": 0}
    assert st["lockouts"][0]["expires_ct"] == "2025-10-15 17:00:00 CT"
    assert st["next_reset_ct"] == "2025-10-15 17:00:00 CT"
    assert st["mll_floor_usd"] == "48000.00"
    assert st["mll_distance_usd"] == str((Money.of(st["equity_usd"]) - Money.of("48000")).as_decimal())
    r3 = next(r for r in st["rules"] if r["rule_id"] == "R3")
    assert r3["used_fraction"] is not None and r3["used_fraction"] >= 1.0
    assert len(st["audit"]) <= 15 and st["audit"][-1]["ts_ns"] <= st["now_ns"]
    json.dumps(st)  # JSON-ready

    # the lockout lifts at 17:00 CT: a manual trade after the reset stays open
    rig.bar(ct_ns(2025, 10, 15, 17, 0), 6692.0)
    assert d.engine.trading_state is TradingState.ACTIVE
    rig.manual(Side.BUY, 1)
    rig.bar(ct_ns(2025, 10, 15, 17, 1), 6693.0)
    rig.bar(ct_ns(2025, 10, 15, 17, 2), 6694.0)
    assert d.node.positions.net_qty(ACCOUNT, SYM) == 1 and d.fills[-1].source == "manual"
    d.stop()

    entries = JsonLinesAuditLog.read(rig.audit_path)
    steps = {(e["point"], e["step"]) for e in entries}
    assert {("enforce", "persist"), ("enforce", "cancel_all"), ("enforce", "close_position")} <= steps
    breach = next(e for e in entries if e["verdict"]["action"] == "LOCKOUT")
    assert breach["inputs"]["day_net"].startswith("-") and breach["inputs"]["positions"]


def test_projectx_without_credentials_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROPDESK_PROJECTX_USERNAME", raising=False)
    monkeypatch.delenv("PROPDESK_PROJECTX_API_KEY", raising=False)
    cfg = load_risk_config("topstep-50k-combine", None)
    with pytest.raises(ConfigError, match="PROPDESK_PROJECTX_API_KEY"):
        projectx_broker(ProjectXRiskOptions(account_id=1, config=cfg), SimClock(0))


def test_the_status_reads_the_daemons_desk(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ct_ns(2025, 10, 15, 9, 0))
    rig.daemon.start()
    stub = StubDesk()
    rig.daemon.desk = stub  # type: ignore[assignment]
    st = rig.daemon.status()
    assert (st["account"], st["preset"], st["state"], st["reasons"]) == (
        7,
        "stub-preset",
        "REDUCING",
        ["R5: stub position limit reached"],
    )
    assert (st["balance_usd"], st["equity_usd"], st["day_net_usd"], st["mll_floor_usd"]) == (
        "51234.50",
        "51334.50",
        "-50.00",
        "49000.00",
    )
    assert (st["mll_distance_usd"], st["daily_loss_left_usd"], st["daily_loss_rule"]) == ("2334.50", "950.00", "R3")
    assert (st["trades_today"], st["contracts_today"], st["trading_date"]) == (4, 6, "2025-10-15")
    assert st["next_reset_ns"] == stub.day.next_reset_ns and st["next_flat_ns"] == stub.day.next_flat_ns
    assert st["next_reset_ct"] == "2025-10-15 17:00:00 CT" and st["conditions"] == {"stale:ESZ5": "no quote for 9 s"}
    assert [(r["rule_id"], r["action"], r["used_fraction"]) for r in st["rules"]] == [("R5", "REDUCE_ONLY", 1.0)]
    assert [(lo["rule_id"], lo["expires_ct"]) for lo in st["lockouts"]] == [("R3", "2025-10-15 17:00:00 CT")]
    assert st["positions"] == [{"symbol": "ESZ5", "qty": 2, "avg_price": "6700.25", "unrealized_usd": "100.00"}]
    assert [(o["client_order_id"], o["side"], o["qty"], o["type"]) for o in st["working_orders"]] == [
        ("stub-entry-1", "BUY", 3, "limit"),
        ("stub-stop-2", "SELL", 3, "stop"),
    ]
    assert st["audit"] == []
    rig.daemon.stop()


def test_the_status_audit_is_the_newest_entries_of_the_ring(tmp_path: Path) -> None:
    t0 = ct_ns(2025, 10, 15, 9, 0)
    rig = Rig(tmp_path, t0)
    rig.daemon.start()
    for i in range(30):
        rig.bar(t0 + i * M, 6700.0 + i / 4)
    audit = rig.daemon.status()["audit"]
    assert audit == [e.to_dict() for e in rig.daemon.ring.entries()[-RECENT_AUDIT:]] and len(audit) > 0
    rig.daemon.stop()
