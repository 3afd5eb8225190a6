"""Every session type is built by NodeBuilder (propdesk.node.builder) with the same wiring: the risk engine attached to
the node with the expected lockout store, the journal hooked into the node with the risk engine and opened under the
session's run kind, recovery from the journal on a live clock only, and the one reconcile-on-connect policy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from propdesk.backtest.engine import BacktestConfig, backtest_node
from propdesk.brokers.projectx import ProjectXSettings
from propdesk.core.clock import LiveClock
from propdesk.model.data import BarSeries, Timeframe
from propdesk.model.identifiers import AccountId
from propdesk.model.reports import FillReport
from propdesk.node import TradingNode
from propdesk.node.builder import DEFAULT_RECONCILE, BuiltNode, NodeBuilder, ReconcilePolicy, SessionKind
from propdesk.risk.lockouts import Lockout, MemoryLockoutStore
from propdesk.risk.presets import RiskConfig, load_risk_config
from propdesk.sessions.live import LiveOptions, LiveSession
from propdesk.sessions.replay import ReplayAccount, RunOptions, RunSession
from propdesk.sessions.risk_daemon.session import (
    ProjectXRiskOptions,
    ProjectXRiskSession,
    SimRiskOptions,
    SimRiskSession,
)
from propdesk.storage.lockouts import SqlLockoutStore
from propdesk.storage.runs import run_token_of
from propdesk.strategies.registry import build_strategy
from tests.stubs.broker import StubBroker

M = 60 * 10**9
T0 = int(datetime(2025, 10, 15, 14, 0, tzinfo=UTC).timestamp()) * 10**9  # Wed 09:00 CT


def minute_bars(n: int = 40) -> BarSeries:
    ts = np.arange(n, dtype=np.int64) * M + T0
    close = 6700.0 + np.arange(n, dtype=np.float64) * 0.25
    return BarSeries(
        "ESZ5", Timeframe.parse("1m"), ts, ts + M, close, close + 0.5, close - 0.5, close, np.full(n, 100, np.int64)
    )


@pytest.fixture(scope="module")
def risk_cfg() -> RiskConfig:
    return load_risk_config("topstep-50k-combine", None)


class StubJournal:
    """The :class:`~propdesk.node.journaling.NodeJournal` surface the builder uses; it records what it was asked."""

    def __init__(self, url: str = "sqlite+aiosqlite:///:memory:") -> None:
        self.url = url
        self.hook_risk: object = "not hooked"
        self.hook_bind: bool | None = None
        self.bound: list[TradingNode] = []
        self.opened: list[dict[str, Any]] = []
        self.run_token = run_token_of("4b0c1a6e-0000-4000-8000-000000000001")
        self.journal = None

    def node_hook(
        self, inner: Callable[[TradingNode], Any] | None = None, *, risk: Any = None, bind: bool = True
    ) -> Callable[[TradingNode], Any]:
        self.hook_risk, self.hook_bind = risk, bind

        def hook(node: TradingNode) -> Any:
            gate = None if inner is None else inner(node)
            if bind:
                self.bind(node)
            return gate

        return hook

    def bind(self, node: TradingNode) -> None:
        self.bound.append(node)

    def open_sync(self, **run: Any) -> str:
        self.opened.append(run)
        return "run"

    async def open(self, **run: Any) -> str:
        self.opened.append(run)
        return "run"


def assert_wiring(built: BuiltNode, kind: SessionKind, journal: StubJournal, store: type) -> None:
    """The facts every session shares (the module docstring), before the journal is opened."""
    node, risk = built.node, built.risk
    assert built.kind is kind
    assert risk is not None
    assert node.orders.gate is risk.gate  # the risk engine's gate on the node's order manager (journal at NORMAL)
    assert risk.state.account_id == node.account_id  # attached to this node
    assert type(risk.store) is store and built.lockouts is risk.store
    assert journal.hook_risk is risk  # the journal's back-pressure reaches the risk engine's guard
    assert built.reconcile_policy == DEFAULT_RECONCILE
    if built.historical:  # attached at once; never restored from the journal
        assert journal.hook_bind is True and journal.bound == [node] and not built.recovers
    else:  # attached only after the node is restored from the journal
        assert journal.hook_bind is False and journal.bound == [] and built.recovers


def test_backtest_node(risk_cfg: RiskConfig) -> None:
    journal = StubJournal()
    strategy = build_strategy("sma_cross", {})
    built = backtest_node(minute_bars(), "ESZ5", strategy, BacktestConfig(risk=risk_cfg), journal)  # type: ignore[arg-type]
    assert_wiring(built, SessionKind.BACKTEST, journal, MemoryLockoutStore)
    assert built.node.strategies == [strategy]
    built.open_journal_sync(strategy=strategy.name, symbol="ESZ5")
    assert [r["kind"] for r in journal.opened] == ["backtest"]
    assert asyncio.run(built.recover(now_ns=T0)) is None and journal.bound == [built.node]


def test_replay_session(risk_cfg: RiskConfig, tmp_path: Path) -> None:
    journal = StubJournal()
    options = RunOptions(replay=tmp_path / "bars.csv", strategy="sma_cross", risk=risk_cfg)
    session = RunSession(options, bars=minute_bars(), journal=journal)  # type: ignore[arg-type]
    built = session.built
    assert_wiring(built, SessionKind.REPLAY, journal, MemoryLockoutStore)
    assert built.node.strategies == [session.strategy]
    asyncio.run(built.open_journal(strategy="sma_cross", symbol="ESZ5"))
    assert [r["kind"] for r in journal.opened] == ["replay"]
    assert built.node.orders.ids.run_token == journal.run_token  # the run's own client order ids
    assert asyncio.run(built.recover(now_ns=T0)) is None and built.recovery is None


def test_serve_account_keeps_its_lockouts_in_the_journal(risk_cfg: RiskConfig, tmp_path: Path) -> None:
    journal = StubJournal(f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}")
    options = RunOptions(replay=tmp_path / "bars.csv", strategy="", risk=risk_cfg)
    account = ReplayAccount(options, bars=minute_bars(), journal=journal, owns_journal=False, kind=SessionKind.SERVE)  # type: ignore[arg-type]
    built = account.built
    try:
        assert_wiring(built, SessionKind.SERVE, journal, SqlLockoutStore)  # a restarted service finds them
        assert built.historical and asyncio.run(built.recover(now_ns=T0)) is None  # never restored from the journal
    finally:
        built.close_lockouts()


def test_live_session(risk_cfg: RiskConfig, tmp_path: Path) -> None:
    journal = StubJournal(f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}")
    options = LiveOptions(strategy="sma_cross", risk=risk_cfg)
    session = LiveSession(options, ProjectXSettings(), account_id=1, broker=StubBroker(), journal=journal)  # type: ignore[arg-type]
    built = session.built
    assert_wiring(built, SessionKind.LIVE, journal, SqlLockoutStore)
    assert built.node.strategies == []  # added after the first reconcile
    try:
        asyncio.run(session._recover())
        assert [r["kind"] for r in journal.opened] == ["live"]
        assert session.recovery is built.recovery and built.recovery is not None  # recovered from the journal
        assert built.recovery.state.is_empty and journal.bound == [built.node]  # then attached
    finally:
        built.close_lockouts()


def test_risk_daemon_on_a_live_account(risk_cfg: RiskConfig, tmp_path: Path) -> None:
    journal = StubJournal(f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}")
    options = ProjectXRiskOptions(account_id=1, config=risk_cfg)
    session = ProjectXRiskSession(options, broker=StubBroker(), journal=journal)  # type: ignore[arg-type]
    built = session.daemon.built
    assert_wiring(built, SessionKind.RISK, journal, SqlLockoutStore)  # the lockouts are the journal's, not a file
    assert built.node.strategies == []
    try:

        async def open_and_recover() -> None:
            await built.open_journal(strategy="risk-daemon", symbol="")
            await built.recover(now_ns=T0)

        asyncio.run(open_and_recover())
        assert [r["kind"] for r in journal.opened] == ["risk"]
        assert built.recovery is not None and journal.bound == [built.node]
    finally:
        built.close_lockouts()


def test_risk_daemon_on_a_replay_keeps_lockouts_in_memory(risk_cfg: RiskConfig, tmp_path: Path) -> None:
    session = SimRiskSession(SimRiskOptions(replay=tmp_path / "bars.csv", config=risk_cfg), bars=minute_bars())
    built = session.daemon.built
    assert built.kind is SessionKind.RISK and built.historical and built.journal is None
    assert built.risk is session.daemon.engine and built.node.orders.gate is built.risk.gate
    assert type(built.risk.store) is MemoryLockoutStore


class FlakyBroker(StubBroker):
    """A broker whose fill reports fail ``failures`` times; records each wait for its commands in flight."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.waits: list[float] = []

    async def wait_idle(self, timeout_s: float) -> None:
        self.waits.append(timeout_s)

    async def fill_reports(self, since_ns: int) -> list[FillReport]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the broker did not answer")
        return await super().fill_reports(since_ns)


def reconcile_with(broker: FlakyBroker) -> tuple[Any, Any]:
    async def go() -> tuple[Any, Any]:
        built = NodeBuilder(
            kind=SessionKind.LIVE,
            clock=LiveClock(),
            broker=broker,  # type: ignore[arg-type]
            reconcile=ReconcilePolicy(attempts=3, idle_timeout_s=2.5, backoff_s=0.0),
        ).build()
        rec = built.reconciler(since_ns=lambda: 0)
        return await rec.reconcile(), rec

    return asyncio.run(go())


def test_reconcile_on_connect_waits_for_commands_and_retries_until_clean() -> None:
    broker = FlakyBroker(failures=1)
    report, rec = reconcile_with(broker)
    assert report is not None and report.ok
    assert broker.waits == [2.5, 2.5] and rec.clean == 1 and rec.reports == [report]


def test_reconcile_on_connect_gives_up_after_the_policys_attempts() -> None:
    broker = FlakyBroker(failures=10)
    report, rec = reconcile_with(broker)
    assert report is None and rec.clean == 0 and rec.reports == []
    assert broker.waits == [2.5, 2.5, 2.5] and broker.failures == 7


def test_a_restarted_risk_daemon_finds_its_lockouts_in_the_journal(risk_cfg: RiskConfig, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"
    now = time.time_ns()
    lockout = Lockout(
        account=AccountId(1),
        rule_id="R3",
        reason="personal daily loss",
        set_at_ns=now - 3_600 * 10**9,
        expires_at_ns=None,
    )

    def daemon_restored() -> BuiltNode:
        session = ProjectXRiskSession(
            ProjectXRiskOptions(account_id=1, config=risk_cfg),
            broker=StubBroker(),
            journal=StubJournal(url),  # type: ignore[arg-type]
        )
        built = session.daemon.built

        async def open_and_recover() -> None:
            await built.open_journal(strategy="risk-daemon", symbol="")
            await built.recover(now_ns=now)

        asyncio.run(open_and_recover())
        return built

    first = daemon_restored()
    assert first.lockouts is not None
    first.lockouts.save(lockout)  # what the engine does before it flattens
    first.close_lockouts()
    second = daemon_restored()  # the restart
    try:
        assert second.lockouts is not None and second.lockouts.load_active(AccountId(1), now) == [lockout]
        assert second.recovery is not None and [lo.rule_id for lo in second.recovery.report.lockouts] == ["R3"]
    finally:
        second.close_lockouts()


def test_the_reconcile_policy_pauses_through_the_one_backoff_schedule() -> None:
    from propdesk.node.builder import ReconcilePolicy  # noqa: PLC0415

    waits = list(ReconcilePolicy().schedule().delays())
    assert waits == pytest.approx([0.2, 0.4, 0.6, 0.8])  # 5 attempts: 4 pauses of k x 0.2 s
