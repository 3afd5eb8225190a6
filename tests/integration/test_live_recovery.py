"""``propdesk run --broker projectx`` restarted on its journal (issue 5 "Recovery") against the local gateway.

A :class:`~propdesk.sessions.live.LiveSession` with a journal (a temp SQLite file) buys one contract and leaves a
resting limit order working, then stops without canceling anything (the broker keeps both, as after a crash). While it
is down a MANUAL market order is placed at the gateway through REST with the same credentials and fills. A new session
on the same journal then restores the node from the journal before connecting, reconciles against the gateway and only
then trades: its orders, positions and fills equal the gateway's, the manual fill is adopted as a foreign (``manual``)
order and counted once, the restored working order keeps its client order id and is not sent again (the gateway's
order list is unchanged), and the risk guard turns ACTIVE only after the reconcile."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from propdesk.brokers.projectx.broker import EXT_PREFIX
from propdesk.execution.order_manager import MANUAL_TAG
from propdesk.model.data import Bar
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import Order
from propdesk.model.records import Lockout
from propdesk.node.journaling import NodeJournal
from propdesk.risk.decisions import TradingState
from propdesk.risk.events import TradingStateChanged
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.live import LiveOptions, LiveSession
from propdesk.storage.db import create_engine_for
from propdesk.storage.lockouts import SqlLockoutStore
from propdesk.storage.migrate import upgrade_async
from propdesk.storage.recovery import load_recovery
from propdesk.storage.repositories import Repository
from propdesk.strategies.base import Strategy, StrategyConfig
from tests.integration.test_live_projectx import Flip, FlipConfig, GatewayApi, serve_gateway, settings_for
from tests.integration.test_live_projectx import gateway_in_session as gateway_in_session  # noqa: PLC0414 - fixture
from tests.unit.emulators.projectx.conftest import POSITION_ACCT

pytestmark = pytest.mark.timeout(180)


class RestConfig(StrategyConfig):
    warmup: int = 0
    buy_at: int = Field(default=1, ge=0)
    """The live bar of the market buy (0: never)."""
    rest_at: int = Field(default=2, ge=0)
    """The live bar of the resting limit buy 200 points under the close (0: never)."""


class BuyAndRest(Strategy):
    """Test strategy: a market buy at live bar ``buy_at``, a limit buy far under the market at live bar ``rest_at``
    (it stays working); it records the session's trading state and reconcile count at every live bar."""

    name: ClassVar[str] = "buy_and_rest"
    config_cls: ClassVar[type[StrategyConfig]] = RestConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        self.seen = 0
        self.resting: Order | None = None
        self.session: LiveSession | None = None
        self.live_states: list[tuple[TradingState | None, int]] = []

    def on_bar(self, bar: Bar) -> None:
        self.seen += 1
        cfg = self.config
        assert isinstance(cfg, RestConfig)
        live = self.seen - cfg.warmup
        if live <= 0:
            return
        if self.session is not None:
            self.live_states.append((self.session.trading_state, self.session.reconciles))
        if live == cfg.buy_at:
            self.buy()
        elif live == cfg.rest_at:
            self.resting = self.buy_limit(self.price_on_tick(bar.close - 200.0))


def _journal_rows(path: Path) -> tuple[list[str], dict[str, tuple[str, int]]]:
    with sqlite3.connect(path) as db:
        trades = [str(r[0]) for r in db.execute("select trade_id from fills where account_id = ?", (POSITION_ACCT,))]
        orders = {
            str(r[0]): (str(r[1]), int(r[2]))
            for r in db.execute(
                "select client_order_id, tag, is_open from orders where account_id = ?", (POSITION_ACCT,)
            )
        }
    return trades, orders


def _session(base: str, journal_path: Path, strategy: BuyAndRest, max_bars: int) -> LiveSession:
    options = LiveOptions(
        strategy="buy_and_rest",
        max_bars=max_bars,
        warmup_bars=5,
        risk=load_risk_config("topstep-50k-combine", None),
        risk_new_account=True,
    )
    journal = NodeJournal(f"sqlite:///{journal_path}")
    session = LiveSession(
        options, settings_for(base), account_id=POSITION_ACCT, account_name="PRAC-1", strategy=strategy, journal=journal
    )
    strategy.session = session
    return session


@pytest.fixture
def journal_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "journal.sqlite3"


@pytest.mark.asyncio
async def test_restart_restores_from_journal_then_reconciles_before_trading(
    gateway_in_session: str, journal_path: Path
) -> None:
    base = gateway_in_session
    api = GatewayApi(base)

    # ---- first session: a filled buy and a working limit order, stopped without canceling anything
    first = BuyAndRest(RestConfig(symbol="ES", warmup=5, buy_at=1, rest_at=2))
    s1 = _session(base, journal_path, first, max_bars=10)
    sum1 = await asyncio.wait_for(s1.run(handle_sigint=False), 90)
    assert sum1.completed and s1.recovery is not None and s1.recovery.state.is_empty  # a first start
    assert len(sum1.fills) == 1 and sum1.open_qty == 1
    assert first.resting is not None and not first.resting.is_done
    resting_cid = str(first.resting.client_order_id)
    journaled_trades, journaled_orders = _journal_rows(journal_path)
    assert journaled_trades == [sum1.fills[0].trade_id]
    assert journaled_orders[resting_cid][1] == 1  # journaled as open

    # ---- while it is down: a manual market buy at the broker (the trader's own platform), which fills
    rows = await api.orders(POSITION_ACCT)
    contract_id = next(r["contractId"] for r in rows if r["customTag"] == resting_cid)
    placed = await api.call(
        "Order/place", {"accountId": POSITION_ACCT, "contractId": contract_id, "type": 2, "side": 0, "size": 1}
    )
    manual_oid = int(placed["orderId"])
    trades_before: list[dict[str, object]] = []

    async def manual_filled() -> bool:
        nonlocal trades_before
        trades_before = await api.trades(POSITION_ACCT)
        return any(t["orderId"] == manual_oid for t in trades_before)

    for _ in range(100):
        if await manual_filled():
            break
        await asyncio.sleep(0.1)
    assert any(t["orderId"] == manual_oid for t in trades_before), "the manual order did not fill"
    orders_before = sorted(r["id"] for r in await api.orders(POSITION_ACCT))

    # ---- second session on the same journal: restore, connect, reconcile, then trade (this one never orders)
    second = BuyAndRest(RestConfig(symbol="ES", warmup=5, buy_at=0, rest_at=0))
    s2 = _session(base, journal_path, second, max_bars=3)
    transitions: list[tuple[TradingState, TradingState, int]] = []

    def on_state(e: TradingStateChanged) -> None:
        transitions.append((e.old, e.new, s2.reconciles))

    s2.node.bus.subscribe(TradingStateChanged.TOPIC, on_state, priority=-400)
    at_connect: list[TradingState | None] = []
    s2.node.bus.subscribe("events.broker.connected", lambda _e: at_connect.append(s2.trading_state), priority=-400)
    run = asyncio.create_task(s2.run(handle_sigint=False))
    try:
        sum2 = await asyncio.wait_for(run, 120)
    finally:
        if not run.done():
            s2.stop()
            await asyncio.wait_for(run, 30)
    assert sum2.completed

    # the journal's state came back before the connect: the working order and the first fill
    assert s2.recovery is not None
    rep = s2.recovery.report
    assert rep.orders_restored == 1 and rep.fills_replayed == 1 and rep.ok
    assert [str(o.client_order_id) for o in s2.recovery.state.open_orders] == [resting_cid]
    assert s2.recovery.last_fill_ns == sum1.fills[0].ts_event_ns

    # the restored working order is the gateway's, recognized by its client order id and not sent again
    after = await api.orders(POSITION_ACCT)
    assert sorted(r["id"] for r in after) == orders_before
    resting = s2.node.orders.order(resting_cid)
    assert resting is not None and not resting.is_done
    gw_resting = next(r for r in await api.orders(POSITION_ACCT) if r["customTag"] == resting_cid)
    assert resting.broker_order_id is not None and int(resting.broker_order_id) == gw_resting["id"]

    # orders, positions and fills equal the gateway's; the manual fill is adopted as foreign and counted once
    gw_trades = await api.trades(POSITION_ACCT)
    gw_trade_ids = sorted(str(t["id"]) for t in gw_trades)
    assert len(gw_trade_ids) == 2
    pm = s2.node.positions
    assert all(pm.has_trade(s2.account_id, tid) for tid in gw_trade_ids)
    local_pos = {p.symbol: p.signed_qty for p in pm.open_positions(s2.account_id)}
    assert local_pos == await api.positions(POSITION_ACCT) and sum(local_pos.values()) == 2
    by_broker_id = {int(o.broker_order_id): o for o in s2.node.orders.orders() if o.broker_order_id is not None}
    journaled_trades, journaled_orders = _journal_rows(journal_path)
    for row in await api.orders(POSITION_ACCT):
        cid = row["customTag"] or f"{EXT_PREFIX}{row['id']}"  # an order without a tag is foreign
        order = s2.node.orders.order(cid) or by_broker_id.get(row["id"])
        if order is None:  # done before the restart: in the journal (closed), not in the restored node
            assert journaled_orders[cid][1] == 0, f"gateway order {row['id']} unknown locally"
            continue
        assert order.filled_qty == row["fillVolume"]
    manual = s2.node.orders.order(f"{EXT_PREFIX}{manual_oid}")
    assert manual is not None
    assert manual.tag == MANUAL_TAG and manual.is_done and manual.filled_qty == 1
    assert sorted(journaled_trades) == gw_trade_ids  # each fill journaled exactly once across both runs
    assert journaled_orders[str(manual.client_order_id)][0] == MANUAL_TAG
    fees = sum((Decimal(str(t["fees"])) for t in gw_trades), Decimal(0))
    assert s2.node.portfolio.fees().as_decimal() == fees

    # trading resumed only after the reconcile: the guard was held REDUCING until then
    assert s2.reconcile_reports and s2.reconcile_reports[0].ok
    assert at_connect[:1] == [TradingState.HALTED]  # connected with every order denied (risk not started yet)
    assert all(n >= 1 for _old, new, n in transitions if new is TradingState.ACTIVE)
    assert second.live_states and all(st is TradingState.ACTIVE and n >= 1 for st, n in second.live_states)


def test_live_lockouts_are_kept_in_the_journal_and_survive_a_restart(journal_path: Path) -> None:
    """With a journal, the live session's risk engine keeps its lockouts in the journal's ``lockouts`` table: a lockout
    set before a restart is what the next session's recovery and risk engine find active (before, they lived in
    memory and a restart forgot them)."""
    asyncio.run(upgrade_async(f"sqlite+aiosqlite:///{journal_path}"))
    now = time.time_ns()
    first = _session("127.0.0.1:9", journal_path, BuyAndRest(RestConfig(symbol="ES", warmup=0)), max_bars=1)
    assert first.risk is not None and isinstance(first.risk.store, SqlLockoutStore)
    daily_loss = Lockout(
        account=AccountId(POSITION_ACCT),
        rule_id="R2",
        reason="daily loss limit -$1,000.00 reached",
        set_at_ns=now - 1_000_000_000,
        expires_at_ns=now + 3_600_000_000_000,
        firm=True,
    )
    first.risk.store.save(daily_loss)
    first.risk.store.close()  # type: ignore[attr-defined]

    second = _session("127.0.0.1:9", journal_path, BuyAndRest(RestConfig(symbol="ES", warmup=0)), max_bars=1)
    assert second.risk is not None
    assert second.risk.store.load_active(AccountId(POSITION_ACCT), now) == [daily_loss]
    second.risk.store.close()  # type: ignore[attr-defined]

    async def recovered() -> list[Lockout]:
        engine = create_engine_for(f"sqlite+aiosqlite:///{journal_path}")
        try:
            return (await load_recovery(Repository(engine), POSITION_ACCT, now)).lockouts
        finally:
            await engine.dispose()

    assert asyncio.run(recovered()) == [daily_loss]


@pytest.mark.asyncio
async def test_two_sessions_against_two_successive_gateways_journal_every_fill_once(journal_path: Path) -> None:
    """``run --broker projectx`` twice on one journal, the gateway restarted between the sessions (a fresh process
    state, its accounts flat): the journal, which keys a ProjectX fill by account and trade id, holds every fill of
    both sessions exactly once (the fills each session must have are its own, never read from the journal)."""
    sessions: list[LiveSession] = []
    for _ in range(2):
        with serve_gateway() as base:
            strategy = Flip(FlipConfig(symbol="ES", every=2, last_bar=4, warmup=5))
            options = LiveOptions(strategy="flip", max_bars=10, warmup_bars=5)
            session = LiveSession(
                options,
                settings_for(base),
                account_id=POSITION_ACCT,
                account_name="PRAC-1",
                strategy=strategy,
                journal=NodeJournal(f"sqlite:///{journal_path}"),
            )
            summary = await asyncio.wait_for(session.run(handle_sigint=False), 90)
            assert summary.completed and len(summary.fills) == 2 and summary.open_qty == 0  # bars 2, 4: buy, close
            sessions.append(session)
    first, second = ([f.trade_id for f in s.fills] for s in sessions)
    assert not set(first) & set(second)  # the restarted gateway's trade ids are new ones
    journaled, _orders = _journal_rows(journal_path)
    assert sorted(journaled) == sorted(first + second)
