"""``propdesk serve`` running: Desk commands through the DeskService on a running sim service (orders, dry run,
denial with headroom, flatten, instances added, paused, changed live with a version conflict, stopped, removed;
their parameter versions stored with who, from where and why), routing by account, a restart that resumes the
stored instances only after the reconcile and not while the account is locked out, and the event stream end to end
over two accounts (one gap-free sequence; N consumers, one killed and resumed from its last seq); a lockout kept in
the journal across a restart; a projectx account unresolved, or unable to connect (the service stops with its error).

The accounts replay a window of the real ES file (ESZ5, 1-minute bars) at 60x under a :class:`~tests.kit.serve.Pacer`:
the replays play only while the test waits for something, so commands land between two bars."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from propdesk.core.errors import ConfigError, PropdeskError
from propdesk.model.commands import (
    INVALID,
    VERSION_CONFLICT,
    AddStrategy,
    CancelOrder,
    FlattenAccount,
    ModifyOrder,
    PauseStrategy,
    RemoveStrategy,
    StartStrategy,
    StopMode,
    StopStrategy,
    StrategyState,
    SubmitOrder,
    UpdateStrategyParams,
)
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import OrderType
from propdesk.model.price import Money, Price
from propdesk.model.records import Lockout
from propdesk.node.journaling import NodeJournal
from propdesk.node.stream import LOSSLESS_TOPICS, StreamEvent, Subscription, SubscriptionClosedError
from propdesk.sessions.live import projectx_settings
from propdesk.sessions.serve import LiveTarget, ServeSession, ServeSummary
from propdesk.storage.db import create_engine_for
from propdesk.storage.instances import load_instances, param_history
from propdesk.storage.repositories import Repository
from tests.kit.serve import Pacer, es_window, sim_settings

SYM = "ESZ5"
ES_TICK_USD = Money.of("12.50")


def start(session: ServeSession, *, signals: bool = False) -> asyncio.Task[ServeSummary]:
    return asyncio.get_running_loop().create_task(session.run(handle_signals=signals))


async def stop(session: ServeSession, task: asyncio.Task[ServeSummary], pacer: Pacer) -> ServeSummary:
    """Stop the service and let its feeds see it (a held feed waits in the pacer's sleep)."""
    session.stop()
    await pacer.until(task.done, what="the service stopped")
    return await task


def played(session: ServeSession, account_id: int = 1) -> int:
    return session.replays[account_id].progress().records


def last_close(session: ServeSession, account_id: int = 1) -> float:
    replay = session.replays[account_id]
    return float(replay.bars.close[played(session, account_id) - 1])


def net(session: ServeSession, account_id: int = 1) -> int:
    node = session.replays[account_id].node
    return node.positions.net_qty(node.account_id, SYM)


@pytest.mark.asyncio
async def test_desk_commands_on_a_running_sim_service(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    pacer = Pacer()
    session = ServeSession(
        sim_settings([{"name": "combine"}]),
        journal=NodeJournal(url),
        bars={"combine": es_window(240)},
        sleep=pacer.sleep,
        monotonic=pacer.monotonic,
    )
    svc = session.service
    task = start(session)
    await pacer.until(lambda: session.reconciled[1] and played(session) >= 3, what="reconciled")

    # a market order: accepted at once, filled at a later bar
    r = svc.execute(SubmitOrder(idempotency_key="buy-1", symbol=SYM, side=Side.BUY, qty=1))
    assert r.accepted and len(r.client_order_ids) == 1
    assert svc.execute(SubmitOrder(idempotency_key="buy-1", symbol=SYM, side=Side.BUY, qty=1)).replayed
    await pacer.until(lambda: net(session) == 1, what="filled")

    # a resting limit order: modified, then canceled
    price = Price.of(str(Decimal(str(last_close(session))) - 20))
    r = svc.execute(
        SubmitOrder(
            idempotency_key="lim-1", symbol=SYM, side=Side.BUY, qty=1, order_type=OrderType.LIMIT, limit_price=price
        )
    )
    assert r.accepted
    cid = r.client_order_ids[0]
    await pacer.until(lambda: any(o.client_order_id == cid for o in svc.working_orders()), what="working")
    lower = Price.of(str(price.as_decimal() - 1))
    assert svc.execute(ModifyOrder(idempotency_key="mod-1", client_order_id=cid, limit_price=lower)).accepted
    await pacer.until(lambda: any(o.limit_price == lower for o in svc.working_orders()), what="modified")
    assert svc.execute(CancelOrder(idempotency_key="can-1", client_order_id=cid)).accepted
    await pacer.until(lambda: not svc.working_orders(), what="canceled")

    # a dry run: the verdict and the USD at risk to its stop, nothing sent
    fills_before = len(svc.fills())
    d = svc.dry_run(
        SubmitOrder(idempotency_key="dry-1", symbol=SYM, side=Side.BUY, qty=2, stop_loss_ticks=8, dry_run=True)
    )
    assert d.accepted and d.dry_run and d.risk is not None
    assert d.risk.at_risk_usd == ES_TICK_USD * 16
    assert d.risk.mll_headroom_usd is not None and d.risk.mll_share is not None
    assert d.risk.mll_share == Decimal(d.risk.at_risk_usd.cents) / Decimal(d.risk.mll_headroom_usd.cents)

    # denied: 40 contracts risk more than the equity above the MLL floor, which is the headroom given
    big = svc.execute(SubmitOrder(idempotency_key="big-1", symbol=SYM, side=Side.BUY, qty=40))
    assert not big.accepted and big.verdict.rule_id == "R1" and big.verdict.reason.startswith("R1: ")
    assert big.verdict.headroom_usd == svc.accounts()[0].mll_distance_usd

    # flatten: the position closes at a later bar
    assert svc.execute(FlattenAccount(idempotency_key="flat-1", reason="test")).accepted
    await pacer.until(lambda: net(session) == 0, what="flat")
    assert len(svc.fills()) == fills_before + 1

    # an instance added at runtime, paused, changed live, a stale edit refused, stopped, removed
    added = svc.execute(
        AddStrategy(
            idempotency_key="add-1",
            name="sma-fast",
            strategy="sma_cross",
            symbol="ES",
            params=(("fast", 5), ("slow", 12)),
            changed_by="ann",
            source="test",
            reason="try a faster pair",
        )
    )
    assert added.accepted, added.verdict.reason
    view = next(i for i in svc.instances() if i.name == "sma-fast")
    assert (view.symbol, view.state, view.version, view.waiting) == (SYM, StrategyState.RUNNING, 1, "")
    assert [s.tag for s in svc.desk(1).strategies()] == ["sma-fast"]
    dup = svc.execute(AddStrategy(idempotency_key="add-2", name="sma-fast", strategy="sma_cross", symbol=SYM))
    assert dup.verdict.rule_id == INVALID
    assert svc.execute(PauseStrategy(idempotency_key="pause-1", strategy="sma-fast")).accepted
    changed = svc.execute(
        UpdateStrategyParams(
            idempotency_key="qty-2",
            strategy="sma-fast",
            params=(("qty", 2),),
            expected_version=1,
            changed_by="bob",
            source="api",
            reason="size up",
        )
    )
    assert changed.accepted
    stale = svc.execute(
        UpdateStrategyParams(idempotency_key="qty-3", strategy="sma-fast", params=(("qty", 3),), expected_version=1)
    )
    assert stale.verdict.rule_id == VERSION_CONFLICT
    view = next(i for i in svc.instances() if i.name == "sma-fast")
    assert (view.state, view.version, view.params["qty"]) == (StrategyState.PAUSED, 2, 2)
    assert svc.execute(StartStrategy(idempotency_key="start-1", strategy="sma-fast")).accepted
    await pacer.until(lambda: played(session) >= 60, what="bars with the instance running")
    busy = svc.execute(RemoveStrategy(idempotency_key="rm-0", name="sma-fast"))
    assert busy.verdict.rule_id == INVALID and "stop it first" in busy.verdict.reason
    halt = StopStrategy(idempotency_key="stop-1", strategy="sma-fast", mode=StopMode.FLATTEN)
    assert svc.execute(halt).accepted
    assert svc.execute(RemoveStrategy(idempotency_key="rm-1", name="sma-fast", reason="done")).accepted
    assert svc.instances() == [] and svc.desk(1).strategies() == []

    # a command for an account the service does not run
    other = svc.execute(SubmitOrder(idempotency_key="x-1", symbol=SYM, side=Side.BUY, qty=1, account_id=9))
    assert other.verdict.rule_id == INVALID and "no account 9" in other.verdict.reason

    summary = await stop(session, task, pacer)
    assert not summary.completed and summary.run_id is not None

    engine = create_engine_for(url)
    try:
        history = await param_history(engine, "sma-fast")
        stored = {s.name: s for s in await load_instances(engine)}
    finally:
        await engine.dispose()
    assert [(v.version, v.changed_by, v.source, v.reason) for v in history] == [
        (1, "ann", "test", "try a faster pair"),
        (2, "bob", "api", "size up"),
    ]
    assert (history[0].params["fast"], history[0].params["qty"], history[1].params["qty"]) == (5, 1, 2)
    assert stored["sma-fast"].desired_state == "removed"


@pytest.mark.asyncio
async def test_commands_are_routed_by_account() -> None:
    pacer = Pacer()
    bars = es_window(30)
    session = ServeSession(
        sim_settings([{"name": "a"}, {"name": "b", "account_id": 2, "risk": ""}]),
        bars={"a": bars, "b": bars},
        sleep=pacer.sleep,
        monotonic=pacer.monotonic,
    )
    svc = session.service
    task = start(session)
    await pacer.until(lambda: all(session.reconciled.values()) and played(session, 2) >= 2, what="reconciled")
    bare = svc.execute(SubmitOrder(idempotency_key="k0", symbol=SYM, side=Side.SELL, qty=1))
    assert bare.verdict.rule_id == INVALID and "several accounts" in bare.verdict.reason
    assert svc.execute(SubmitOrder(idempotency_key="k1", symbol=SYM, side=Side.SELL, qty=1, account_id=2)).accepted
    await pacer.until(lambda: net(session, 2) == -1, what="account 2 filled")
    assert net(session, 1) == 0
    assert [a.account_id for a in svc.accounts()] == [1, 2]
    assert [p.account_id for p in svc.positions()] == [AccountId(2)]
    assert sorted(svc.risk_status()) == [1, 2] and svc.risk_status()[2] == []  # account b runs no risk engine
    await stop(session, task, pacer)


async def _first_run(url: str, pacer: Pacer) -> None:
    session = ServeSession(
        sim_settings([{"name": "combine"}], [{"name": "sma", "strategy": "sma_cross", "account": "combine"}]),
        journal=NodeJournal(url),
        bars={"combine": es_window(30)},
        sleep=pacer.sleep,
        monotonic=pacer.monotonic,
    )
    svc = session.service
    task = start(session)
    await pacer.until(lambda: bool(svc.desk(1).strategies()), what="instance on the node")
    assert svc.execute(PauseStrategy(idempotency_key="p", strategy="sma")).accepted
    change = UpdateStrategyParams(
        idempotency_key="u", strategy="sma", params=(("qty", 2),), expected_version=1, changed_by="ann", source="cli"
    )
    assert svc.execute(change).accepted
    await stop(session, task, pacer)


@pytest.mark.asyncio
async def test_a_restart_resumes_instances_after_the_reconcile_and_not_while_locked_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    await _first_run(url, Pacer())

    pacer = Pacer()
    bars = es_window(60)
    # the configuration now asks for a running sma; the journal's paused version 2 wins
    session = ServeSession(
        sim_settings([{"name": "combine"}], [{"name": "sma", "strategy": "sma_cross", "account": "combine"}]),
        journal=NodeJournal(url),
        bars={"combine": bars},
        sleep=pacer.sleep,
        monotonic=pacer.monotonic,
    )
    first = int(bars.ts_open_ns[0])
    lifts = first + 20 * 60 * 10**9
    lockouts = session.replays[1].built.lockouts
    assert lockouts is not None
    lockouts.save(Lockout(account=AccountId(1), rule_id="R3", reason="test", set_at_ns=first, expires_at_ns=lifts))
    svc = session.service
    task = start(session)
    await pacer.until(lambda: session.reconciled[1], what="reconciled")
    (view,) = svc.instances()
    assert view.waiting.startswith("waiting: the account is locked out (R3 until")
    assert svc.desk(1).strategies() == []
    await pacer.until(lambda: played(session) >= 10, what="bars while locked out")
    assert svc.desk(1).strategies() == [] and svc.instances()[0].waiting
    await pacer.until(lambda: bool(svc.desk(1).strategies()), what="resumed after the lockout")
    assert session.replays[1].clock.timestamp_ns() >= lifts
    (view,) = svc.instances()
    assert (view.state, view.version, view.params["qty"], view.waiting) == (StrategyState.PAUSED, 2, 2, "")
    (on_node,) = svc.desk(1).strategies()
    assert (on_node.state, on_node.version, on_node.params["qty"]) == (StrategyState.PAUSED, 2, 2)
    await stop(session, task, pacer)


async def _consume(sub: Subscription, into: list[StreamEvent], stop_after: int | None = None) -> None:
    try:
        async for event in sub:
            into.append(event)
            if stop_after is not None and len(into) >= stop_after:
                return
    except SubscriptionClosedError:
        return


@pytest.mark.asyncio
async def test_the_event_stream_of_two_accounts_end_to_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    pacer = Pacer()
    bars = es_window(90)
    session = ServeSession(
        sim_settings(
            [{"name": "a"}, {"name": "b", "account_id": 2}],
            [
                {"name": "fast-a", "strategy": "sma_cross", "account": "a", "params": {"fast": 2, "slow": 4}},
                {"name": "fast-b", "strategy": "sma_cross", "account": "b", "params": {"fast": 3, "slow": 5}},
            ],
        ),
        journal=NodeJournal(url),
        bars={"a": bars, "b": bars},
        sleep=pacer.sleep,
        monotonic=pacer.monotonic,
    )
    task = start(session)
    await pacer.until(lambda: session.stream is not None, what="stream")
    stream = session.stream
    assert stream is not None
    subs = [stream.subscribe(LOSSLESS_TOPICS, after_seq=0) for _ in range(3)]
    got: list[list[StreamEvent]] = [[], [], []]
    loop = asyncio.get_running_loop()
    consumers = [loop.create_task(_consume(subs[i], got[i])) for i in (0, 1)]
    killed = loop.create_task(_consume(subs[2], got[2], stop_after=20))
    await pacer.until(lambda: played(session, 1) >= 30 and played(session, 2) >= 30, what="a third of the bars")
    await pacer.hold_until(killed.done, what="the third consumer's first 20 events")
    killed.result()
    subs[2].close()  # killed: it resumes later from the last seq it received
    resume_from = subs[2].last_seq
    assert resume_from == got[2][-1].seq
    await pacer.until(lambda: played(session, 1) >= 60 and played(session, 2) >= 60, what="two thirds of the bars")
    resumed = stream.subscribe(LOSSLESS_TOPICS, after_seq=resume_from)
    consumers.append(loop.create_task(_consume(resumed, got[2])))
    await pacer.until(lambda: played(session, 1) >= 85 and played(session, 2) >= 85, what="most bars")
    # the feeds held: every event captured so far committed, then every consumer caught up with it
    journal = session.journal
    assert journal is not None
    await journal.journal.flush()
    engine = create_engine_for(url)
    try:
        stored = await Repository(engine).events_after(0, 1_000_000)
    finally:
        await engine.dispose()
    want = [(int(r["seq"]), r["topic"]) for r in stored if subs[0].matches(r["topic"])]
    last = want[-1][0]
    await pacer.hold_until(lambda: all(g and g[-1].seq >= last for g in got), what="every consumer at the last event")
    await stop(session, task, pacer)
    for c in consumers:
        c.cancel()

    seqs = [int(r["seq"]) for r in stored]
    assert seqs == list(range(1, len(seqs) + 1))  # one gap-free sequence for both accounts
    assert {int(r["account_id"]) for r in stored} >= {1, 2}
    topics = {t for _, t in want}
    assert "events.order.filled" in topics and any(t.startswith("events.position.") for t in topics)
    for events in got:
        assert [(e.seq, e.topic) for e in events if e.seq <= last] == want  # every event once, in order
    fills = {int(r["account_id"]) for r in stored if r["topic"] == "events.order.filled"}
    assert fills == {1, 2}


def test_with_no_account_configured_the_default_combine_runs_and_an_instance_of_another_account_is_left_out() -> None:
    settings = sim_settings([], [{"name": "x", "strategy": "sma_cross", "account": "elsewhere"}])
    session = ServeSession(settings, bars={"combine": es_window(5)})
    assert session.names == {1: "combine"} and session.replays[1].risk is not None
    assert session.initial == []
    assert session.warnings == ["instance x: the service runs no account named 'elsewhere'; left out"]


TINY_DAILY_LOSS = """
preset = "topstep-50k-combine"

[rules.personal_daily_loss]
amount = 15
trigger_buffer_usd = 0
default_risk_ticks = 1
"""


@pytest.mark.asyncio
async def test_a_lockout_is_stored_in_the_journal_and_keeps_instances_waiting_after_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    risk_file = tmp_path / "risk.toml"
    risk_file.write_text(TINY_DAILY_LOSS, encoding="utf-8")
    settings = sim_settings(
        [{"name": "combine", "risk_config": str(risk_file)}],
        [{"name": "sma", "strategy": "sma_cross", "account": "combine", "state": "paused"}],
    )

    def serve(pacer: Pacer) -> ServeSession:
        return ServeSession(
            settings,
            journal=NodeJournal(url),
            bars={"combine": es_window(60)},
            sleep=pacer.sleep,
            monotonic=pacer.monotonic,
        )

    # first run: a long position loses more than the $15 personal daily loss (its fees and a tick against it do)
    pacer = Pacer()
    session = serve(pacer)
    task = start(session)
    await pacer.until(lambda: session.reconciled[1] and played(session) >= 3, what="reconciled")
    assert session.service.instances()[0].waiting == ""
    assert session.service.execute(SubmitOrder(idempotency_key="buy-1", symbol=SYM, side=Side.BUY, qty=1)).accepted
    risk = session.replays[1].risk
    assert risk is not None
    await pacer.until(lambda: bool(risk.guard.lockouts), what="locked out")
    (lockout,) = risk.guard.lockouts
    await stop(session, task, pacer)
    stored = session.replays[1].built.lockouts
    assert stored is not None and stored.load_active(AccountId(1), lockout.set_at_ns) == [lockout]

    # restart: the lockout is read back from the journal; the instance waits, naming the rule
    pacer = Pacer()
    session = serve(pacer)
    task = start(session)
    await pacer.until(lambda: session.reconciled[1], what="reconciled")
    (view,) = session.service.instances()
    assert view.waiting.startswith(f"waiting: the account is locked out ({lockout.rule_id} until")
    assert session.service.desk(1).strategies() == []
    await pacer.until(lambda: played(session) >= 10, what="bars while locked out")
    assert session.service.desk(1).strategies() == [] and session.service.instances()[0].waiting
    await stop(session, task, pacer)


@pytest.mark.asyncio
async def test_a_projectx_account_that_cannot_connect_stops_the_service_with_its_error() -> None:
    closed = "http://127.0.0.1:9"  # nothing listens on the discard port
    px = projectx_settings(
        api_base=closed,
        user_hub=f"{closed}/hubs/user",
        market_hub=f"{closed}/hubs/market",
        config_path=None,
        environ={"PROPDESK_PROJECTX_USERNAME": "stub-user", "PROPDESK_PROJECTX_API_KEY": "stub-key"},
    )
    settings = sim_settings([{"name": "sim"}, {"name": "px", "broker": "projectx", "risk": ""}])
    target = LiveTarget(account_id=11001, account_name="PRAC-1", balance=Money.of("50000"), symbol="ESZ5")
    pacer = Pacer()
    session = ServeSession(
        settings,
        bars={"sim": es_window(30)},
        sleep=pacer.sleep,
        monotonic=pacer.monotonic,
        live={"px": target},
        projectx=px,
    )
    assert session.order == [1, 11001] and session.symbols[11001] == "ESZ5"
    task = start(session)
    await pacer.until(task.done, what="the service stopped")
    with pytest.raises(PropdeskError):
        await task
    assert session.replays[1].interrupted  # the sim account was stopped, not played to its end
    assert not session.reconciled[11001]


def test_a_projectx_account_must_be_resolved_first() -> None:
    settings = sim_settings([{"name": "px", "broker": "projectx", "risk": ""}])
    with pytest.raises(ConfigError, match="serve account 'px': the ProjectX account is not resolved yet"):
        ServeSession(settings)
