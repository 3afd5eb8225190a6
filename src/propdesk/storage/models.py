"""The journal's tables (SQLAlchemy 2 typed declarative models).

Conventions (ARCHITECTURE.md principles 5 and 6):

* money is ``BigInteger`` US cents (``*_cents``), exact;
* prices are ``BigInteger`` fixed point, price x 10**9 (``*_raw``, :class:`propdesk.model.price.Price.raw`), exact;
* timestamps are ``BigInteger`` UTC nanoseconds (``*_ns``), indexed where rows are looked up by time;
* trading dates are ``Date``; free-form details are JSON text (``payload``, ``extra``: written with sorted keys,
  money and prices as exact decimal strings).

Every journal table has a natural unique key, so a replayed event is ignored (insert-or-ignore, see
:mod:`propdesk.storage.repositories`): fills ``(account_id, trade_id, venue_session)``, order events ``(account_id,
client_order_id, event_key)`` with ``event_key`` a signed 64-bit BLAKE2b digest of the event's kind and canonical
JSON, position snapshots ``(account_id, position_tag, symbol, trade_id, kind, venue_session)``, risk events
``(account_id, event_key, venue_session)`` (SHA-256 hex), account snapshots ``(account_id, kind, ts_ns, ref,
venue_session)``, EOD balances ``(account_id, trading_date)``, lockouts ``(account_id, rule_id)``, bars ``(symbol,
timeframe, ts_open_ns)``. There are deliberately no foreign keys from the journal tables to ``accounts``: the journal
must never reject a record because another has not arrived yet.

Runs and venue sessions. Every record a node journals carries the id of its strategy run (``run_id``: ``orders``,
``order_events``, ``fills``, ``position_snapshots``, ``account_snapshots``, ``risk_events``; the first run that
journaled it, ``NULL`` for rows written before revision 0002 or outside a run). A fill's identity is the broker's
trade id within its account **and venue session** (``venue_session``): the scope in which the venue's ids are unique.
A simulated exchange starts its trade ids again at ``1-1`` in every run, so its venue session is the run id; a
broker whose trade ids are unique in the account (ProjectX) has the empty venue session, so the same fill reported
again after a reconnect or a restart of the same account, in a new run, is still one row. The records whose keys
hold trade ids or event times (position snapshots, account snapshots, risk events) are scoped the same way. Client
order ids carry a run token (:mod:`propdesk.execution.ids`), so ``orders`` and ``order_events`` need no venue
session. EOD balances and lockouts are per account, not per run. Run life cycle: :mod:`propdesk.storage.runs`.

Indexes on the hot tables (``order_events``, ``position_snapshots``, ``orders``, written for every order event and
fill) are kept to what recovery and the readers need, since each index is another B-tree written per row (issue 5):
the unique keys double as the lookup indexes (an order's events by ``(account_id, client_order_id)``, the newest
position per contract by ``(account_id, position_tag, symbol)``: the venue session comes last in each key so these
prefixes stay), plus ``order_events (account_id, ts_event_ns)``
and ``orders (account_id, is_open, ts_last_ns)``.

The schema is created by the Alembic migrations in ``storage/migrations``; these models are the source the
migrations were written from (keep them in step: ``tests/unit/storage/test_migrations.py`` compares the two).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Account",
    "AccountSnapshotRow",
    "ApiKeyRow",
    "BacktestResultRow",
    "BarCoverageRow",
    "BarRow",
    "Base",
    "CommandResultRow",
    "EodBalanceRow",
    "EventRow",
    "FillRow",
    "LockoutRow",
    "OrderEventRow",
    "OrderRow",
    "PositionSnapshotRow",
    "RiskEventRow",
    "StrategyInstanceRow",
    "StrategyParamVersionRow",
    "StrategyRun",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_ID = BigInteger().with_variant(Integer, "sqlite")
"""Surrogate keys: 64-bit on PostgreSQL, SQLite's ``INTEGER PRIMARY KEY`` (the rowid, which is 64-bit too)."""


class Base(DeclarativeBase):
    """Declarative base of every journal table (constraint names follow :data:`NAMING`)."""

    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    """A broker account propdesk has seen (one row per account; details refreshed from account reports)."""

    __tablename__ = "accounts"

    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    broker: Mapped[str] = mapped_column(String(40), default="")
    simulated: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    can_trade: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    balance_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    first_seen_ns: Mapped[int] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)


class OrderRow(Base):
    """The latest known state of one order (a projection of its events; restores open orders after a crash)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "client_order_id"),
        Index(None, "account_id", "is_open", "ts_last_ns"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    client_order_id: Mapped[str] = mapped_column(String(64))
    broker_order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[int] = mapped_column(Integer)
    """+1 buy, -1 sell."""
    qty: Mapped[int] = mapped_column(Integer)
    order_type: Mapped[str] = mapped_column(String(16))
    limit_price_raw: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stop_price_raw: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    trail_ticks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tif: Mapped[str] = mapped_column(String(8))
    tag: Mapped[str] = mapped_column(String(64), default="")
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    linked_ids: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of client order ids (OCO partners)."""
    status: Mapped[str] = mapped_column(String(20))
    is_open: Mapped[bool] = mapped_column(Boolean)
    filled_qty: Mapped[int] = mapped_column(Integer, default=0)
    fees_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    fill_notional_raw: Mapped[int] = mapped_column(BigInteger, default=0)
    """Sum of fill price raw x qty (the average fill price is this / filled_qty)."""
    reason: Mapped[str] = mapped_column(Text, default="")
    ts_init_ns: Mapped[int] = mapped_column(BigInteger)
    ts_last_ns: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """The run that journaled the order first (kept when a later run updates it)."""


class OrderEventRow(Base):
    """One order event as it happened (``kind``: ``submitted``, ``accepted``, ``filled`` ...)."""

    __tablename__ = "order_events"
    __table_args__ = (
        UniqueConstraint("account_id", "client_order_id", "event_key"),
        Index(None, "account_id", "ts_event_ns"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    client_order_id: Mapped[str] = mapped_column(String(64))
    """Looked up through the unique key's ``(account_id, client_order_id)`` prefix."""
    kind: Mapped[str] = mapped_column(String(24))
    ts_event_ns: Mapped[int] = mapped_column(BigInteger)
    reconciled: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[str] = mapped_column(Text)
    event_key: Mapped[int] = mapped_column(BigInteger)
    """Signed 64-bit BLAKE2b digest of kind and payload (:func:`propdesk.storage.rows.order_event_key`)."""
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


_RUN_ID_DOC = """The strategy run that journaled the row first (``NULL``: before revision 0002, or outside a
run)."""
_VENUE_DOC = """The venue session the broker's ids are unique in: the run id for a simulated exchange, empty for a
broker whose trade ids are unique in the account (ProjectX)."""


class FillRow(Base):
    """One execution: ``trade_id`` is the broker's execution id, unique per account and venue session (module
    docstring)."""

    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("account_id", "trade_id", "venue_session"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    trade_id: Mapped[str] = mapped_column(String(64))
    client_order_id: Mapped[str] = mapped_column(String(64), index=True)
    broker_order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[int] = mapped_column(Integer)
    qty: Mapped[int] = mapped_column(Integer)
    price_raw: Mapped[int] = mapped_column(BigInteger)
    fee_cents: Mapped[int] = mapped_column(BigInteger)
    tag: Mapped[str] = mapped_column(String(64), default="")
    ts_event_ns: Mapped[int] = mapped_column(BigInteger, index=True)
    reconciled: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True, doc=_RUN_ID_DOC)
    venue_session: Mapped[str] = mapped_column(String(64), default="", server_default="", doc=_VENUE_DOC)


class PositionSnapshotRow(Base):
    """The position in one contract after (part of) a fill (``kind``: ``opened``, ``changed``, ``closed``)."""

    __tablename__ = "position_snapshots"
    __table_args__ = (
        # the unique key's (account_id, position_tag, symbol) prefix also serves "the newest snapshot per contract"
        UniqueConstraint("account_id", "position_tag", "symbol", "trade_id", "kind", "venue_session"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    position_tag: Mapped[str] = mapped_column(String(64), default="")
    """The position's strategy tag; empty for the account-level position."""
    kind: Mapped[str] = mapped_column(String(16))
    trade_id: Mapped[str] = mapped_column(String(64))
    tag: Mapped[str] = mapped_column(String(64), default="")
    """The fill's strategy tag."""
    signed_qty: Mapped[int] = mapped_column(Integer)
    avg_price_raw: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    realized_pnl_cents: Mapped[int] = mapped_column(BigInteger)
    fees_cents: Mapped[int] = mapped_column(BigInteger)
    unrealized_pnl_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    opened_ts_ns: Mapped[int] = mapped_column(BigInteger)
    last_ts_ns: Mapped[int] = mapped_column(BigInteger)
    fill_count: Mapped[int] = mapped_column(Integer)
    fill_signed_qty: Mapped[int] = mapped_column(Integer)
    fill_price_raw: Mapped[int] = mapped_column(BigInteger)
    fill_fee_cents: Mapped[int] = mapped_column(BigInteger)
    fill_realized_pnl_cents: Mapped[int] = mapped_column(BigInteger)
    ts_event_ns: Mapped[int] = mapped_column(BigInteger)
    reconciled: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True, doc=_RUN_ID_DOC)
    venue_session: Mapped[str] = mapped_column(String(64), default="", server_default="", doc=_VENUE_DOC)


class AccountSnapshotRow(Base):
    """The risk engine's account figures (:class:`propdesk.model.records.AccountSnapshot`) at one moment.

    ``kind``: ``fill`` (after a fill; ``ref`` is the trade id), ``eod`` (at the session roll; ``ref`` is the ended
    trading date), ``manual``. ``extra`` holds the histories (EOD balances, daily net, open round trips) as JSON.
    """

    __tablename__ = "account_snapshots"
    __table_args__ = (
        UniqueConstraint("account_id", "kind", "ts_ns", "ref", "venue_session"),
        Index(None, "account_id", "ts_ns"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(64), default="")
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    trading_date: Mapped[date] = mapped_column(Date)
    balance_cents: Mapped[int] = mapped_column(BigInteger)
    sod_balance_cents: Mapped[int] = mapped_column(BigInteger)
    day_realized_gross_cents: Mapped[int] = mapped_column(BigInteger)
    day_fees_cents: Mapped[int] = mapped_column(BigInteger)
    day_peak_realized_cents: Mapped[int] = mapped_column(BigInteger)
    day_peak_equity_cents: Mapped[int] = mapped_column(BigInteger)
    mll_peak_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    trades_today: Mapped[int] = mapped_column(Integer)
    trades_week: Mapped[int] = mapped_column(Integer)
    contracts_today: Mapped[int] = mapped_column(Integer)
    week_start_ns: Mapped[int] = mapped_column(BigInteger)
    consecutive_losses: Mapped[int] = mapped_column(Integer)
    last_loss_ts_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    extra: Mapped[str] = mapped_column(Text, default="{}")
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True, doc=_RUN_ID_DOC)
    venue_session: Mapped[str] = mapped_column(String(64), default="", server_default="", doc=_VENUE_DOC)


class EodBalanceRow(Base):
    """The balance at the end of one trading day (the trailing-drawdown floor trails these)."""

    __tablename__ = "eod_balances"
    __table_args__ = (UniqueConstraint("account_id", "trading_date"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    trading_date: Mapped[date] = mapped_column(Date)
    balance_cents: Mapped[int] = mapped_column(BigInteger)
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class RiskEventRow(Base):
    """A risk decision, enforcement step, state change or lockout event: the durable audit log.

    ``kind`` is the event's topic's last segment (``rule_breached``, ``decision_logged``, ``lockout_set`` ...).
    """

    __tablename__ = "risk_events"
    __table_args__ = (UniqueConstraint("account_id", "event_key", "venue_session"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    ts_ns: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    point: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(24), default="")
    state: Mapped[str] = mapped_column(String(12), default="")
    step: Mapped[str] = mapped_column(String(32), default="")
    rule_id: Mapped[str] = mapped_column(String(64), default="")
    reasons: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[str] = mapped_column(Text)
    event_key: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True, doc=_RUN_ID_DOC)
    venue_session: Mapped[str] = mapped_column(String(64), default="", server_default="", doc=_VENUE_DOC)


class EventRow(Base):
    """One event of the journal's sequenced stream (:mod:`propdesk.node.stream`): every record the journal captures
    (order events, fills, position changes, account reports and snapshots, EOD balances, risk events, strategy run
    rows), numbered in capture order by the journal that captured it.

    ``seq`` is global and gap-free (the journal continues from ``max(seq)`` when it opens; one journal writes a
    database at a time), the primary key (so replaying a batch writes nothing twice and "every event after N" is one
    range scan of the key). ``topic``: the bus topic (``events.order.filled``, ``events.position.changed``,
    ``events.account.snapshot`` ...). ``payload``: the event as canonical JSON (the fields of its table row: prices
    as ``Price.raw``, money as cents, times as UTC ns).
    """

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    topic: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(BigInteger)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True, doc=_RUN_ID_DOC)
    payload: Mapped[str] = mapped_column(Text)


class LockoutRow(Base):
    """The lockout in force (or last in force) per ``(account, rule)`` (see :mod:`propdesk.risk.lockouts`)."""

    __tablename__ = "lockouts"
    __table_args__ = (UniqueConstraint("account_id", "rule_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    rule_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    set_at_ns: Mapped[int] = mapped_column(BigInteger)
    expires_at_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    firm: Mapped[bool] = mapped_column(Boolean, default=False)


class StrategyRun(Base):
    """One run of a strategy: a backtest, a replay or a live session (``kind``).

    ``status``: ``running``, ``completed``, ``stopped`` (ended on request before the end of its data), ``failed``, or
    ``aborted`` (its process died; found at the next start). ``host``/``pid``/``pid_start`` name the process that
    runs it and ``heartbeat_ns`` is refreshed while it runs; ``run_key`` identifies a replay by its inputs, so a
    restart of a killed replay continues it (``attempts`` counts its starts). See :mod:`propdesk.storage.runs`.
    """

    __tablename__ = "strategy_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(16), default="")
    account_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    params: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_ns: Mapped[int] = mapped_column(BigInteger, index=True)
    ended_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    run_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    """SHA-256 hex of a replay's inputs (:func:`propdesk.storage.runs.run_key_of`); ``NULL`` for other runs."""
    host: Mapped[str] = mapped_column(String(255), default="", server_default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid_start: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The process's start time (Linux: clock ticks after boot, ``/proc/<pid>/stat``), so a reused pid is told
    apart; ``NULL`` where the system does not tell."""
    heartbeat_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class BacktestResultRow(Base):
    """The headline figures of one backtest run (money in cents) and its full JSON report."""

    __tablename__ = "backtest_results"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("strategy_runs.id", ondelete="CASCADE"), unique=True)
    bars: Mapped[int] = mapped_column(Integer)
    first_bar_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_bar_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fills: Mapped[int] = mapped_column(Integer)
    trades: Mapped[int] = mapped_column(Integer)
    net_pnl_cents: Mapped[int] = mapped_column(BigInteger)
    gross_pnl_cents: Mapped[int] = mapped_column(BigInteger)
    fees_cents: Mapped[int] = mapped_column(BigInteger)
    max_drawdown_cents: Mapped[int] = mapped_column(BigInteger)
    win_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    profit_factor: Mapped[float | None] = mapped_column(Float, nullable=True)
    sharpe: Mapped[float | None] = mapped_column(Float, nullable=True)
    report: Mapped[str] = mapped_column(Text)


class BarRow(Base):
    """A cached historical bar; prices fixed point x 10**9, volume in contracts."""

    __tablename__ = "bars"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(16), primary_key=True)
    ts_open_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts_close_ns: Mapped[int] = mapped_column(BigInteger)
    open_raw: Mapped[int] = mapped_column(BigInteger)
    high_raw: Mapped[int] = mapped_column(BigInteger)
    low_raw: Mapped[int] = mapped_column(BigInteger)
    close_raw: Mapped[int] = mapped_column(BigInteger)
    volume: Mapped[int] = mapped_column(BigInteger)


class BarCoverageRow(Base):
    """A span ``[start_ns, end_ns)`` of (symbol, timeframe) known to be fully cached (gaps inside are real)."""

    __tablename__ = "bar_coverage"
    __table_args__ = (UniqueConstraint("symbol", "timeframe", "start_ns", "end_ns"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(16))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(40), default="")
    fetched_ns: Mapped[int] = mapped_column(BigInteger)


class CommandResultRow(Base):
    """The first result the desk gave a command key (:mod:`propdesk.node.desk`, idempotency across restarts).

    ``content_digest``: SHA-256 hex of the command's canonical JSON without ``ts_ns`` (the same key with another
    digest is an idempotency conflict). ``result``: the :class:`~propdesk.model.commands.CommandResult` as JSON.
    """

    __tablename__ = "command_results"

    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    command_type: Mapped[str] = mapped_column(String(64))
    content_digest: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(Text)
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class StrategyInstanceRow(Base):
    """A named strategy instance of ``propdesk serve``: bound to one account and contract.

    ``strategy``: the reference the registry builds it from (bundled name, ``module:Class``, ``file.py:Class``).
    ``desired_state``: ``running``, ``paused`` or ``stopped`` (what a restart resumes, after reconciliation and never
    while the account is locked out). ``params_version``: the current row of ``strategy_param_versions``.
    """

    __tablename__ = "strategy_instances"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    strategy: Mapped[str] = mapped_column(String(512))
    symbol: Mapped[str] = mapped_column(String(32))
    desired_state: Mapped[str] = mapped_column(String(16))
    params_version: Mapped[int] = mapped_column(Integer)
    created_ns: Mapped[int] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)


class StrategyParamVersionRow(Base):
    """One parameter version of a strategy instance: the full parameters (JSON), who changed them (``changed_by``),
    from where (``source``: ``config``, ``cli``, ``api``, ``desk`` ...), why (``reason``) and when (UTC ns)."""

    __tablename__ = "strategy_param_versions"

    instance: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    params: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class ApiKeyRow(Base):
    """An API key of propdesk's HTTP API (:mod:`propdesk.api.keys`); the secret itself is never stored.

    ``key_id``: the public id (the key's prefix, how a presented key is looked up). ``secret_hash``: SHA-256 hex of
    the secret with the key id (:func:`propdesk.api.keys.hash_secret`). ``scopes``: comma-separated, sorted
    (``admin``, ``read``, ``trade``). ``allow_trade_remote``: the key may trade from a non-loopback client.
    ``rate_per_minute`` / ``burst``: its token bucket (requests per minute, bucket size). ``created_ns``,
    ``last_used_ns``, ``revoked_ns``: UTC ns (``NULL``: never used / not revoked).
    """

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(64))
    allow_trade_remote: Mapped[bool] = mapped_column(Boolean)
    rate_per_minute: Mapped[int] = mapped_column(Integer)
    burst: Mapped[int] = mapped_column(Integer)
    created_ns: Mapped[int] = mapped_column(BigInteger)
    last_used_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
