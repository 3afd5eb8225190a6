"""Reads and writes of the journal tables over an async engine.

Writes are **insert-or-ignore** on each table's natural unique key (``INSERT ... ON CONFLICT DO NOTHING`` in both
SQLite and PostgreSQL), so a replayed event never creates a second row. Two tables are projections and upsert
instead: ``orders`` (the latest state of each order; a row only replaces an older one, by ``ts_last_ns``) and
``accounts`` (details refreshed by account reports); ``strategy_runs`` rows upsert by id (a run's start, then its
end, can travel through the journal). :meth:`Repository.write` takes rows of several tables and writes them in
**one transaction** (the journal's batch).

Every row a node journals carries its strategy run (``run_id``) and, where the record is keyed by a broker's trade
id or an event time, its venue session (:mod:`propdesk.storage.models`); runs are started, continued and listed
through :mod:`propdesk.storage.runs` (:meth:`Repository.claim_run`, :meth:`Repository.runs`).

Reads serve recovery after a restart (open orders with their fills, latest positions, the latest account snapshot
with day counters, EOD balance history, active lockouts, the last journaled fill for reconciliation), the export
and ``propdesk db info``; bar-cache reads and writes are keyed by ``(symbol, timeframe, ts_open_ns)`` with coverage
ranges.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from propdesk.model.data import Bar, Timeframe
from propdesk.model.events import OrderFilled
from propdesk.model.orders import Fill, Order
from propdesk.model.positions import PositionSnapshot
from propdesk.model.price import Money, Price
from propdesk.model.records import Lockout
from propdesk.storage import rows as rw
from propdesk.storage import runs as strategy_runs
from propdesk.storage.models import Base

__all__ = [
    "ORDER_KEEP",
    "TABLES",
    "JournaledFill",
    "Repository",
    "insert_ignore",
    "lockout_match",
    "table_rank",
    "upsert",
]

TABLES: dict[str, Table] = dict(Base.metadata.tables)
"""Every journal table by name."""

_ORDERS: Table = TABLES["orders"]
_ACCOUNTS: Table = TABLES["accounts"]


def _insert(dialect: str, table: Table) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def insert_ignore(dialect: str, table: Table) -> Any:
    """``INSERT INTO table ... ON CONFLICT DO NOTHING`` for ``dialect`` (``sqlite`` or ``postgresql``)."""
    return _insert(dialect, table).on_conflict_do_nothing()


def upsert(
    dialect: str, table: Table, keys: Sequence[str], newer_than: str | None = None, keep: Sequence[str] = ()
) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` every other column but ``keep`` (the stored value stays); only
    when ``excluded.newer_than >=`` the stored value if ``newer_than`` is given (so a replayed older state never
    overwrites a newer one)."""
    stmt = _insert(dialect, table)
    cols = {
        c.name: stmt.excluded[c.name]
        for c in table.columns
        if c.name not in keys and c.name not in keep and not c.primary_key
    }
    where = None if newer_than is None else table.c[newer_than] <= stmt.excluded[newer_than]
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=cols, where=where)


_ACCOUNT_KEEP = ("first_seen_ns",)

ORDER_KEEP: tuple[str, ...] = ("run_id",)
"""``orders`` columns an update keeps: the run that journaled the order first owns it."""


@dataclass(frozen=True, slots=True)
class JournaledFill:
    """A journaled fill with the run that journaled it (``None``: before revision 0002) and its venue session."""

    fill: OrderFilled
    run_id: str | None
    venue_session: str


_FIRST: dict[str, int] = {"accounts": 0, "strategy_runs": 1}


def table_rank(name: str) -> int:
    """Sort key of the tables of one batch: ``accounts`` first (readers join on them), then ``strategy_runs``
    (``backtest_results`` refers to them), then the rest in the order first seen (the sort is stable)."""
    return _FIRST.get(name, 2)


class Repository:
    """The journal's tables behind one :class:`AsyncEngine` (SQLite or PostgreSQL).

    Args:
        engine: from :func:`propdesk.storage.db.create_engine_for`; the schema must be migrated
            (:func:`propdesk.storage.migrate.upgrade_engine`).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    # ------------------------------------------------------------------ writes

    async def write(self, rows: Iterable[tuple[str, rw.Row]]) -> int:
        """Write ``(table name, row)`` pairs in one transaction (insert-or-ignore; upsert for ``orders`` and
        ``accounts``). Returns the number of rows given (ignored duplicates included).

        Raises:
            KeyError: an unknown table name. sqlalchemy errors: the database refused the batch (nothing written).
        """
        async with self.engine.begin() as conn:
            return await self.write_in(conn, rows)

    async def write_in(self, conn: AsyncConnection, rows: Iterable[tuple[str, rw.Row]]) -> int:
        """:meth:`write` inside an open transaction ``conn``."""
        groups: dict[str, list[rw.Row]] = {}
        n = 0
        for table, row in rows:
            groups.setdefault(table, []).append(row)
            n += 1
        for name in sorted(groups, key=table_rank):
            batch = groups[name]
            tbl = TABLES[name]
            if name == "strategy_runs":
                runs = {r["id"]: r for r in batch}  # the newest row of each run (start, then end)
                await conn.execute(upsert(self.dialect, tbl, ("id",)), list(runs.values()))
            elif name == "strategy_instances":
                newest = {r["name"]: r for r in batch}  # an instance's latest state (desired state, version)
                await conn.execute(upsert(self.dialect, tbl, ("name",)), list(newest.values()))
            elif name == "orders":
                last: dict[tuple[int, str], rw.Row] = {}
                for r in batch:  # one statement may not update the same row twice (PostgreSQL)
                    last[(r["account_id"], r["client_order_id"])] = r
                await conn.execute(
                    upsert(self.dialect, tbl, ("account_id", "client_order_id"), "ts_last_ns", ORDER_KEEP),
                    list(last.values()),
                )
            elif name == "accounts":
                plain = [r for r in batch if not r["name"] and r["balance_cents"] is None]
                reports = {r["account_id"]: r for r in batch if r["name"] or r["balance_cents"] is not None}
                if plain:
                    await conn.execute(insert_ignore(self.dialect, tbl), plain)
                if reports:
                    stmt = _insert(self.dialect, tbl)
                    cols = {
                        c.name: stmt.excluded[c.name]
                        for c in tbl.columns
                        if c.name not in _ACCOUNT_KEEP and not c.primary_key
                    }
                    await conn.execute(
                        stmt.on_conflict_do_update(index_elements=["account_id"], set_=cols), list(reports.values())
                    )
            else:
                await conn.execute(insert_ignore(self.dialect, tbl), batch)
        return n

    # ------------------------------------------------------------------ the event stream

    async def max_event_seq(self) -> int:
        """The largest event sequence number stored (``events.seq``; 0 when there is none)."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.max(TABLES["events"].c.seq)))).scalar() or 0)

    async def events_after(self, after_seq: int, limit: int = 1000, upto_seq: int | None = None) -> list[rw.Row]:
        """The ``events`` rows with ``after_seq < seq`` (``<= upto_seq`` if given), oldest first, at most ``limit``
        (one range scan of the primary key). Each row: ``seq``, ``topic``, ``account_id``, ``ts_ns`` (UTC ns),
        ``run_id``, ``payload`` (canonical JSON)."""
        t = TABLES["events"]
        q = select(t.c.seq, t.c.topic, t.c.account_id, t.c.ts_ns, t.c.run_id, t.c.payload).where(t.c.seq > after_seq)
        if upto_seq is not None:
            q = q.where(t.c.seq <= upto_seq)
        async with self.engine.connect() as conn:
            result = await conn.execute(q.order_by(t.c.seq).limit(limit))
            return [dict(r._mapping) for r in result]

    # ------------------------------------------------------------------ orders and fills

    async def fills(
        self,
        account_id: int | None = None,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        run_id: str | None = None,
    ) -> list[OrderFilled]:
        """Journaled fills, oldest first (by event time, then journal order), optionally of one account, of one run
        and within ``[since_ns, until_ns)``."""
        return [
            j.fill for j in await self.journaled_fills(account_id, since_ns=since_ns, until_ns=until_ns, run_id=run_id)
        ]

    async def journaled_fills(
        self,
        account_id: int | None = None,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        run_id: str | None = None,
    ) -> list[JournaledFill]:
        """:meth:`fills` with each fill's run and venue session."""
        t = TABLES["fills"].c
        q = select(TABLES["fills"])
        if account_id is not None:
            q = q.where(t.account_id == account_id)
        if run_id is not None:
            q = q.where(t.run_id == run_id)
        if since_ns is not None:
            q = q.where(t.ts_event_ns >= since_ns)
        if until_ns is not None:
            q = q.where(t.ts_event_ns < until_ns)
        async with self.engine.connect() as conn:
            res = await conn.execute(q.order_by(t.ts_event_ns, t.id))
            return [JournaledFill(rw.fill_from_row(r), r.run_id, r.venue_session) for r in res]

    async def last_fill_ts_ns(self, account_id: int) -> int | None:
        """The event time of the newest journaled fill of ``account_id`` (reconciliation asks the broker for fills
        since then), ``None`` when there is none."""
        t = TABLES["fills"].c
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(func.max(t.ts_event_ns)).where(t.account_id == account_id))).scalar()
        return None if value is None else int(value)

    async def order(self, account_id: int, client_order_id: str) -> Order | None:
        """The journaled order (latest state, with its fills), or ``None``."""
        orders = await self._orders(
            and_(_ORDERS.c.account_id == account_id, _ORDERS.c.client_order_id == client_order_id)
        )
        return orders[0] if orders else None

    async def open_orders(self, account_id: int) -> list[Order]:
        """Orders of ``account_id`` that were sent or working at their last journaled event, oldest first, with
        their fills: what a restart restores before reconciling against the broker."""
        return await self._orders(and_(_ORDERS.c.account_id == account_id, _ORDERS.c.is_open.is_(True)))

    async def _orders(self, where: Any) -> list[Order]:
        f = TABLES["fills"].c
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_ORDERS).where(where).order_by(_ORDERS.c.ts_init_ns, _ORDERS.c.id))).all()
            out: list[Order] = []
            for r in rows:
                fres = await conn.execute(
                    select(TABLES["fills"])
                    .where(f.account_id == r.account_id, f.client_order_id == r.client_order_id)
                    .order_by(f.ts_event_ns, f.id)
                )
                fills = [Fill(x.qty, Price(x.price_raw), Money(x.fee_cents), x.trade_id, x.ts_event_ns) for x in fres]
                out.append(rw.order_from_row(r, fills))
            return out

    async def order_events(self, account_id: int, client_order_id: str) -> list[dict[str, Any]]:
        """The journaled events of one order, oldest first: ``{"kind", "ts_event_ns", "reconciled", "payload"}``
        with ``payload`` decoded from JSON."""
        t = TABLES["order_events"].c
        async with self.engine.connect() as conn:
            res = await conn.execute(
                select(t.kind, t.ts_event_ns, t.reconciled, t.payload)
                .where(t.account_id == account_id, t.client_order_id == client_order_id)
                .order_by(t.ts_event_ns, t.id)
            )
            return [
                {
                    "kind": r.kind,
                    "ts_event_ns": r.ts_event_ns,
                    "reconciled": bool(r.reconciled),
                    "payload": json.loads(r.payload),
                }
                for r in res
            ]

    # ------------------------------------------------------------------ positions and accounts

    async def latest_positions(self, account_id: int, *, include_flat: bool = False) -> list[PositionSnapshot]:
        """The newest account-level position snapshot of each contract of ``account_id`` (by symbol); flat ones only
        with ``include_flat``."""
        t = TABLES["position_snapshots"].c
        newest = (
            select(t.symbol, func.max(t.id).label("id"))
            .where(t.account_id == account_id, t.position_tag == "")
            .group_by(t.symbol)
            .subquery()
        )
        q = select(TABLES["position_snapshots"]).join(newest, t.id == newest.c.id).order_by(t.symbol)
        async with self.engine.connect() as conn:
            snaps = [rw.position_snapshot_from_row(r) for r in await conn.execute(q)]
        return snaps if include_flat else [s for s in snaps if s.signed_qty != 0]

    async def latest_account_snapshot(self, account_id: int) -> Any:
        """The newest :class:`~propdesk.model.records.AccountSnapshot` of ``account_id`` (by time, then journal
        order), or ``None``."""
        t = TABLES["account_snapshots"].c
        q = select(TABLES["account_snapshots"]).where(t.account_id == account_id).order_by(t.ts_ns.desc(), t.id.desc())
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.limit(1))).first()
        return None if row is None else rw.account_snapshot_from_row(row)

    async def eod_balances(self, account_id: int) -> list[tuple[date, Money]]:
        """``(trading date, end-of-day balance)`` of every journaled day of ``account_id``, oldest first."""
        t = TABLES["eod_balances"].c
        q = select(t.trading_date, t.balance_cents).where(t.account_id == account_id).order_by(t.trading_date)
        async with self.engine.connect() as conn:
            return [(r.trading_date, Money(r.balance_cents)) for r in await conn.execute(q)]

    async def risk_events(
        self, account_id: int, *, since_ns: int | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Journaled risk events (the audit log) of ``account_id``, oldest first, as dicts of their columns with
        ``payload`` decoded."""
        t = TABLES["risk_events"].c
        q = select(TABLES["risk_events"]).where(t.account_id == account_id)
        if since_ns is not None:
            q = q.where(t.ts_ns >= since_ns)
        if kind is not None:
            q = q.where(t.kind == kind)
        async with self.engine.connect() as conn:
            out = []
            for r in await conn.execute(q.order_by(t.ts_ns, t.id)):
                d = dict(r._mapping)
                d["payload"] = json.loads(d["payload"])
                out.append(d)
            return out

    async def active_lockouts(self, account_id: int, now_ns: int) -> list[Lockout]:
        """Lockouts of ``account_id`` still active at ``now_ns`` (no expiry, or expiry after it), oldest first."""
        t = TABLES["lockouts"].c
        q = (
            select(TABLES["lockouts"])
            .where(t.account_id == account_id, or_(t.expires_at_ns.is_(None), t.expires_at_ns > now_ns))
            .order_by(t.set_at_ns, t.id)
        )
        async with self.engine.connect() as conn:
            return [rw.lockout_from_row(r) for r in await conn.execute(q)]

    # ------------------------------------------------------------------ strategy runs and backtests

    async def start_run(
        self,
        *,
        kind: str,
        strategy: str,
        symbol: str,
        started_ns: int,
        timeframe: str = "",
        account_id: int | None = None,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record the start of a strategy run (``kind``: ``backtest``, ``replay``, ``live``); returns its id (a
        new UUID unless ``run_id`` is given; an existing id is left as it is)."""
        rid = run_id or str(uuid.uuid4())
        row = rw.strategy_run_row(
            run_id=rid,
            kind=kind,
            strategy=strategy,
            symbol=symbol,
            started_ns=started_ns,
            timeframe=timeframe,
            account_id=account_id,
            params=params,
        )
        async with self.engine.begin() as conn:
            await conn.execute(insert_ignore(self.dialect, TABLES["strategy_runs"]), [row])
        return rid

    async def finish_run(self, run_id: str, *, ended_ns: int, status: str = strategy_runs.COMPLETED) -> None:
        """Mark a run ended (``status``: ``completed``, ``stopped``, ``failed``: :mod:`propdesk.storage.runs`)."""
        t = TABLES["strategy_runs"]
        async with self.engine.begin() as conn:
            await conn.execute(update(t).where(t.c.id == run_id).values(ended_ns=ended_ns, status=status))

    async def claim_run(self, row: Mapping[str, Any]) -> tuple[rw.Row, bool, list[str]]:
        """In one transaction: mark the runs whose process is gone aborted (:func:`propdesk.storage.runs.sweep_runs`),
        then record the start of ``row`` or continue the aborted run with its ``run_key``
        (:func:`propdesk.storage.runs.claim_run`). Returns the stored row, whether a run was continued, and the ids
        marked aborted."""
        async with self.engine.begin() as conn:
            aborted = await conn.run_sync(strategy_runs.sweep_runs)
            stored, continued = await conn.run_sync(lambda c: strategy_runs.claim_run(c, row))
        return stored, continued, aborted

    async def runs(self) -> list[strategy_runs.RunInfo]:
        """Every run, oldest first, with its fill and order counts (:func:`propdesk.storage.runs.list_runs`)."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(strategy_runs.list_runs)

    async def resolve_run(self, ident: str) -> str:
        """The run id ``ident`` names (its id or a unique prefix). Raises ConfigError as
        :func:`propdesk.storage.runs.resolve_run`."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(lambda c: strategy_runs.resolve_run(c, ident))

    async def save_backtest_result(self, run_id: str, report: Mapping[str, Any]) -> None:
        """Store a backtest's report (``BacktestResult.to_json_dict()``: money as USD strings) under ``run_id``;
        a second save for the same run is ignored."""
        row = rw.backtest_result_row(run_id, report)
        async with self.engine.begin() as conn:
            await conn.execute(insert_ignore(self.dialect, TABLES["backtest_results"]), [row])

    async def backtest_result(self, run_id: str) -> dict[str, Any] | None:
        """The stored report of ``run_id`` (decoded JSON), or ``None``."""
        t = TABLES["backtest_results"].c
        async with self.engine.connect() as conn:
            text = (await conn.execute(select(t.report).where(t.run_id == run_id))).scalar()
        return None if text is None else dict(json.loads(text))

    # ------------------------------------------------------------------ bar cache

    async def save_bars(
        self, bars: Sequence[Bar], *, coverage: tuple[int, int] | None = None, source: str = "", fetched_ns: int = 0
    ) -> None:
        """Cache ``bars`` (existing ones kept) and, with ``coverage`` ``(start_ns, end_ns)``, record that span of
        their (symbol, timeframe) as complete. All bars must share one symbol and timeframe when ``coverage`` is
        given.

        Raises:
            ValueError: ``coverage`` with bars of several symbols or timeframes, or an empty/inverted span.
        """
        rows = [rw.bar_row(b) for b in bars]
        cov_row = None
        if coverage is not None:
            keys = {(r["symbol"], r["timeframe"]) for r in rows}
            if len(keys) > 1:
                raise ValueError(f"coverage needs bars of one symbol and timeframe, got {sorted(keys)}")
            start, end = coverage
            if end <= start:
                raise ValueError(f"coverage span [{start}, {end}) is empty")
            if not keys:
                raise ValueError("coverage without bars: pass the symbol with save_coverage()")
            sym, tf = keys.pop()
            cov_row = {
                "symbol": sym,
                "timeframe": tf,
                "start_ns": start,
                "end_ns": end,
                "source": source,
                "fetched_ns": fetched_ns,
            }
        async with self.engine.begin() as conn:
            for lo in range(0, len(rows), 5000):
                await conn.execute(insert_ignore(self.dialect, TABLES["bars"]), rows[lo : lo + 5000])
            if cov_row is not None:
                await conn.execute(insert_ignore(self.dialect, TABLES["bar_coverage"]), [cov_row])

    async def save_coverage(
        self, symbol: str, timeframe: str, start_ns: int, end_ns: int, *, source: str = "", fetched_ns: int = 0
    ) -> None:
        """Record ``[start_ns, end_ns)`` of ``symbol``/``timeframe`` as complete (e.g. a span with no bars)."""
        row = {
            "symbol": symbol,
            "timeframe": timeframe,
            "start_ns": start_ns,
            "end_ns": end_ns,
            "source": source,
            "fetched_ns": fetched_ns,
        }
        async with self.engine.begin() as conn:
            await conn.execute(insert_ignore(self.dialect, TABLES["bar_coverage"]), [row])

    async def coverage(self, symbol: str, timeframe: str) -> list[tuple[int, int]]:
        """The cached spans of ``symbol``/``timeframe``, merged where they touch or overlap, oldest first."""
        t = TABLES["bar_coverage"].c
        q = select(t.start_ns, t.end_ns).where(t.symbol == symbol, t.timeframe == timeframe).order_by(t.start_ns)
        async with self.engine.connect() as conn:
            spans = [(r.start_ns, r.end_ns) for r in await conn.execute(q)]
        merged: list[tuple[int, int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged

    async def load_bars(self, symbol: str, timeframe: str, start_ns: int, end_ns: int) -> list[Bar]:
        """Cached bars of ``symbol``/``timeframe`` opening in ``[start_ns, end_ns)``, oldest first."""
        t = TABLES["bars"].c
        q = (
            select(TABLES["bars"])
            .where(t.symbol == symbol, t.timeframe == timeframe, t.ts_open_ns >= start_ns, t.ts_open_ns < end_ns)
            .order_by(t.ts_open_ns)
        )
        tf = Timeframe.parse(timeframe)
        scale = 1e9
        async with self.engine.connect() as conn:
            return [
                Bar(
                    r.symbol,
                    tf,
                    r.open_raw / scale,
                    r.high_raw / scale,
                    r.low_raw / scale,
                    r.close_raw / scale,
                    r.volume,
                    r.ts_open_ns,
                    r.ts_close_ns,
                )
                for r in await conn.execute(q)
            ]

    # ------------------------------------------------------------------ lockouts (async side) and info

    async def delete_lockout(self, lockout: Lockout) -> None:
        """Delete the stored lockout of ``lockout``'s key if it equals ``lockout``."""
        t = TABLES["lockouts"]
        async with self.engine.begin() as conn:
            await conn.execute(delete(t).where(*lockout_match(t, lockout)))

    async def counts(self) -> dict[str, int]:
        """Row count of every journal table (by name, sorted)."""
        out: dict[str, int] = {}
        async with self.engine.connect() as conn:
            for name in sorted(TABLES):
                out[name] = int((await conn.execute(select(func.count()).select_from(TABLES[name]))).scalar() or 0)
        return out


def lockout_match(t: Table, lockout: Lockout) -> list[Any]:
    """Conditions matching the stored row of exactly ``lockout``."""
    conds = [
        t.c.account_id == int(lockout.account),
        t.c.rule_id == lockout.rule_id,
        t.c.reason == lockout.reason,
        t.c.set_at_ns == lockout.set_at_ns,
        t.c.firm.is_(lockout.firm),
    ]
    conds.append(
        t.c.expires_at_ns.is_(None) if lockout.expires_at_ns is None else t.c.expires_at_ns == lockout.expires_at_ns
    )
    return conds
