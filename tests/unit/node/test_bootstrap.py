"""Tests for the MLL floor bootstrap from a broker's trade history (propdesk.node.bootstrap): paging back to the
first trade, the one-line refusals, and nothing done when the floor is already known."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from propdesk.core.clock import SimClock
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId, BrokerOrderId
from propdesk.model.price import Money, Price
from propdesk.model.reports import AccountReport, FillReport
from propdesk.node import NodeConfig, TradingNode
from propdesk.node.bootstrap import HISTORY_SOURCE, bootstrap_from_broker, fetch_fill_history, sync_broker_balance
from propdesk.risk.engine import RiskEngine
from propdesk.risk.history_bootstrap import HistoryUnavailableError
from propdesk.risk.presets import load_risk_config
from tests.stubs.broker import StubBroker

DAY = 86_400 * 1_000_000_000
HOUR = 3_600 * 1_000_000_000
NOW = int(datetime(2025, 11, 5, 16, 0, tzinfo=UTC).timestamp()) * 1_000_000_000  # Wed 10:00 CST
ACC = AccountId(1)


def usd(text: str) -> Money:
    return Money.of(Decimal(text))


def fill(tid: int, days_ago: float, pnl: str | None, fee: str = "2.50") -> FillReport:
    return FillReport(
        account_id=ACC, trade_id=str(tid), broker_order_id=BrokerOrderId(tid), client_order_id=None, symbol="ESZ5",
        side=Side.BUY, qty=1, price=Price.of("6000"), fee=usd(fee), ts_ns=NOW - int(days_ago * DAY),
        realized_pnl=None if pnl is None else usd(pnl),
    )  # fmt: skip


class History:
    """A broker's trade history: ``trade_history`` answers one window (inclusive), ``account_report`` the balance."""

    def __init__(self, fills: Sequence[FillReport], balance: str, *, fail: Exception | None = None) -> None:
        self.fills = list(fills)
        self.balance = usd(balance)
        self.fail = fail
        self.windows: list[tuple[int, int]] = []

    async def trade_history(self, start_ns: int, end_ns: int) -> list[FillReport]:
        if self.fail is not None:
            raise self.fail
        self.windows.append((start_ns, end_ns))
        return [f for f in self.fills if start_ns <= f.ts_ns <= end_ns]

    async def account_report(self) -> AccountReport:
        return AccountReport(account_id=ACC, name="x", balance=self.balance, can_trade=True, simulated=True)


# 50,000 + (1,000 - 5.00) + (-300 - 5.00) = 50,690.00; the first trade 70 days back, the last 40
OLD = [fill(1, 70, None), fill(2, 70, "1000.00"), fill(3, 40, None), fill(4, 40, "-300.00")]


@pytest.mark.asyncio
async def test_pages_back_until_the_balance_is_explained_and_a_window_is_empty() -> None:
    src = History(OLD, "50690.00")
    fills, balance, requests, days = await fetch_fill_history(src, now_ns=NOW, start_balance=usd("50000"))
    assert [f.trade_id for f in fills] == ["1", "2", "3", "4"]
    assert balance == usd("50690.00")
    # windows of 30 days from an hour past now (clock skew): [now+1h-30, now+1h] empty but unexplained, then trades
    # 3-4, then trades 1-2, then empty and explained: stop
    assert requests == 4 and days == 119
    assert src.windows[0] == (NOW + HOUR - 30 * DAY, NOW + HOUR)
    assert src.windows[-1] == (NOW + HOUR - 120 * DAY, NOW + HOUR - 90 * DAY)


@pytest.mark.asyncio
async def test_stops_at_the_look_back_limit() -> None:
    src = History(OLD, "99999.00")
    _fills, _balance, requests, days = await fetch_fill_history(
        src, now_ns=NOW, start_balance=usd("50000"), window_days=30, max_days=100
    )
    assert requests == 4 and days == 100  # 30 + 30 + 30 + the rest to 100 days back
    assert src.windows[-1] == (NOW - 100 * DAY, NOW + HOUR - 90 * DAY)


def _engine(mll_floor: str | None = None) -> RiskEngine:
    cfg = load_risk_config("topstep-50k-combine", None)
    if mll_floor is not None:
        from dataclasses import replace  # noqa: PLC0415

        cfg = replace(cfg, mll_floor=usd(mll_floor))
    engine = RiskEngine(cfg, quote_stale_s=None)
    TradingNode(clock=SimClock(NOW), broker=StubBroker(account_id=ACC), config=NodeConfig(bus_timing=False),
                risk=engine.attach)  # fmt: skip
    return engine


@pytest.mark.asyncio
async def test_seeds_the_floor_and_audits_the_source() -> None:
    engine = _engine()
    assert engine.state.missing_inputs() == ["mll_floor"]
    result = await bootstrap_from_broker(engine, History(OLD, "50690.00"), now_ns=NOW)
    assert result is not None
    # EOD high 50,995.00 (70 days back) -> floor 48,995.00
    assert engine.state.mll_floor == usd("48995.00")
    assert engine.state.balance == usd("50690.00")
    assert engine.state.missing_inputs() == []
    (entry,) = engine.audit.entries(point="store")  # type: ignore[attr-defined]
    assert entry.inputs["source"] == HISTORY_SOURCE and entry.inputs["mll_floor_usd"] == "48995.00"


@pytest.mark.asyncio
async def test_a_fill_stamped_after_the_local_clock_is_part_of_the_history() -> None:
    # the broker's clock runs 2 s ahead: its latest fill is later than our "now" and still explains the balance
    ahead = [*OLD, fill(5, -2 / 86_400, "100.00")]
    engine = _engine()
    result = await bootstrap_from_broker(engine, History(ahead, "50787.50"), now_ns=NOW)
    assert result is not None
    assert engine.state.mll_floor == usd("48995.00")  # not refused as "the history does not explain the balance"


@pytest.mark.asyncio
async def test_a_configured_floor_needs_no_history() -> None:
    engine = _engine("48500")
    src = History(OLD, "50690.00")
    assert await bootstrap_from_broker(engine, src, now_ns=NOW) is None
    assert src.windows == []
    assert engine.state.mll_floor == usd("48500")


@pytest.mark.asyncio
async def test_no_answer_from_the_trades_endpoint_is_refused_in_one_line() -> None:
    engine = _engine()
    with pytest.raises(HistoryUnavailableError) as exc:
        await bootstrap_from_broker(engine, History(OLD, "50690.00", fail=OSError("connection\nrefused")), now_ns=NOW)
    text = str(exc.value)
    assert "\n" not in text and "[account] mll_floor" in text and "could not be read" in text
    assert engine.state.mll_floor is None


@pytest.mark.asyncio
async def test_an_account_older_than_the_history_is_refused() -> None:
    engine = _engine()
    with pytest.raises(HistoryUnavailableError, match=r"does not explain the balance.*\[account\] mll_floor"):
        await bootstrap_from_broker(engine, History(OLD[2:], "50690.00"), now_ns=NOW, max_days=60)
    assert engine.state.mll_floor is None


@pytest.mark.asyncio
async def test_a_known_floor_takes_the_brokers_balance_and_keeps_the_day() -> None:
    engine = _engine("48500")
    assert engine.state.balance == usd("50000")
    assert await sync_broker_balance(engine, History([], "50690.00")) == usd("50690.00")
    assert engine.state.balance == usd("50690.00") and engine.state.sod_balance == usd("50690.00")
    assert engine.state.mll_floor == usd("48500")
    assert await sync_broker_balance(engine, _Down()) is None  # unreadable: unchanged
    assert engine.state.balance == usd("50690.00")


class _Down(History):
    def __init__(self) -> None:
        super().__init__([], "0")

    async def account_report(self) -> AccountReport:
        raise OSError("unreachable")
