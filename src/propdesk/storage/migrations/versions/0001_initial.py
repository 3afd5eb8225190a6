"""The initial journal schema: accounts, orders, order events, fills, position snapshots, account snapshots, EOD
balances, risk events (the audit log), lockouts, strategy runs, backtest results, cached bars and their coverage.

Written from :mod:`propdesk.storage.models` (Alembic autogenerate, then reviewed).

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply the revision."""
    op.create_table(
        "account_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("trading_date", sa.Date(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("sod_balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("day_realized_gross_cents", sa.BigInteger(), nullable=False),
        sa.Column("day_fees_cents", sa.BigInteger(), nullable=False),
        sa.Column("day_peak_realized_cents", sa.BigInteger(), nullable=False),
        sa.Column("day_peak_equity_cents", sa.BigInteger(), nullable=False),
        sa.Column("mll_peak_cents", sa.BigInteger(), nullable=True),
        sa.Column("trades_today", sa.Integer(), nullable=False),
        sa.Column("trades_week", sa.Integer(), nullable=False),
        sa.Column("contracts_today", sa.Integer(), nullable=False),
        sa.Column("week_start_ns", sa.BigInteger(), nullable=False),
        sa.Column("consecutive_losses", sa.Integer(), nullable=False),
        sa.Column("last_loss_ts_ns", sa.BigInteger(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_snapshots")),
        sa.UniqueConstraint(
            "account_id", "kind", "ts_ns", "ref", name=op.f("uq_account_snapshots_account_id_kind_ts_ns_ref")
        ),
    )
    op.create_index(
        op.f("ix_account_snapshots_account_id_ts_ns"), "account_snapshots", ["account_id", "ts_ns"], unique=False
    )

    op.create_table(
        "accounts",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("broker", sa.String(length=40), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=True),
        sa.Column("can_trade", sa.Boolean(), nullable=True),
        sa.Column("balance_cents", sa.BigInteger(), nullable=True),
        sa.Column("first_seen_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "bar_coverage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("fetched_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bar_coverage")),
        sa.UniqueConstraint(
            "symbol", "timeframe", "start_ns", "end_ns", name=op.f("uq_bar_coverage_symbol_timeframe_start_ns_end_ns")
        ),
    )
    op.create_table(
        "bars",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("ts_open_ns", sa.BigInteger(), nullable=False),
        sa.Column("ts_close_ns", sa.BigInteger(), nullable=False),
        sa.Column("open_raw", sa.BigInteger(), nullable=False),
        sa.Column("high_raw", sa.BigInteger(), nullable=False),
        sa.Column("low_raw", sa.BigInteger(), nullable=False),
        sa.Column("close_raw", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "ts_open_ns", name=op.f("pk_bars")),
    )
    op.create_table(
        "eod_balances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("trading_date", sa.Date(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eod_balances")),
        sa.UniqueConstraint("account_id", "trading_date", name=op.f("uq_eod_balances_account_id_trading_date")),
    )
    op.create_table(
        "fills",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_id", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("broker_order_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("price_raw", sa.BigInteger(), nullable=False),
        sa.Column("fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("ts_event_ns", sa.BigInteger(), nullable=False),
        sa.Column("reconciled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("account_id", "trade_id", name=op.f("uq_fills_account_id_trade_id")),
    )
    op.create_index(op.f("ix_fills_client_order_id"), "fills", ["client_order_id"], unique=False)
    op.create_index(op.f("ix_fills_ts_event_ns"), "fills", ["ts_event_ns"], unique=False)

    op.create_table(
        "lockouts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("firm", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lockouts")),
        sa.UniqueConstraint("account_id", "rule_id", name=op.f("uq_lockouts_account_id_rule_id")),
    )
    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("ts_event_ns", sa.BigInteger(), nullable=False),
        sa.Column("reconciled", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("event_key", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
        sa.UniqueConstraint(
            "account_id",
            "client_order_id",
            "event_key",
            name=op.f("uq_order_events_account_id_client_order_id_event_key"),
        ),
    )
    op.create_index(
        op.f("ix_order_events_account_id_ts_event_ns"), "order_events", ["account_id", "ts_event_ns"], unique=False
    )

    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("broker_order_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("limit_price_raw", sa.BigInteger(), nullable=True),
        sa.Column("stop_price_raw", sa.BigInteger(), nullable=True),
        sa.Column("trail_ticks", sa.Integer(), nullable=True),
        sa.Column("tif", sa.String(length=8), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("linked_ids", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("filled_qty", sa.Integer(), nullable=False),
        sa.Column("fees_cents", sa.BigInteger(), nullable=False),
        sa.Column("fill_notional_raw", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts_init_ns", sa.BigInteger(), nullable=False),
        sa.Column("ts_last_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("account_id", "client_order_id", name=op.f("uq_orders_account_id_client_order_id")),
    )
    op.create_index(
        op.f("ix_orders_account_id_is_open_ts_last_ns"), "orders", ["account_id", "is_open", "ts_last_ns"], unique=False
    )

    op.create_table(
        "position_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("position_tag", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trade_id", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("signed_qty", sa.Integer(), nullable=False),
        sa.Column("avg_price_raw", sa.BigInteger(), nullable=True),
        sa.Column("realized_pnl_cents", sa.BigInteger(), nullable=False),
        sa.Column("fees_cents", sa.BigInteger(), nullable=False),
        sa.Column("unrealized_pnl_cents", sa.BigInteger(), nullable=True),
        sa.Column("opened_ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("fill_count", sa.Integer(), nullable=False),
        sa.Column("fill_signed_qty", sa.Integer(), nullable=False),
        sa.Column("fill_price_raw", sa.BigInteger(), nullable=False),
        sa.Column("fill_fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("fill_realized_pnl_cents", sa.BigInteger(), nullable=False),
        sa.Column("ts_event_ns", sa.BigInteger(), nullable=False),
        sa.Column("reconciled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_snapshots")),
        sa.UniqueConstraint(
            "account_id",
            "position_tag",
            "symbol",
            "trade_id",
            "kind",
            name=op.f("uq_position_snapshots_account_id_position_tag_symbol_trade_id_kind"),
        ),
    )

    op.create_table(
        "risk_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("point", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
        sa.UniqueConstraint("account_id", "event_key", name=op.f("uq_risk_events_account_id_event_key")),
    )
    op.create_index(op.f("ix_risk_events_ts_ns"), "risk_events", ["ts_ns"], unique=False)

    op.create_table(
        "strategy_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_ns", sa.BigInteger(), nullable=False),
        sa.Column("ended_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_runs")),
    )
    op.create_index(op.f("ix_strategy_runs_started_ns"), "strategy_runs", ["started_ns"], unique=False)

    op.create_table(
        "backtest_results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("bars", sa.Integer(), nullable=False),
        sa.Column("first_bar_ns", sa.BigInteger(), nullable=True),
        sa.Column("last_bar_ns", sa.BigInteger(), nullable=True),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("net_pnl_cents", sa.BigInteger(), nullable=False),
        sa.Column("gross_pnl_cents", sa.BigInteger(), nullable=False),
        sa.Column("fees_cents", sa.BigInteger(), nullable=False),
        sa.Column("max_drawdown_cents", sa.BigInteger(), nullable=False),
        sa.Column("win_rate", sa.Float(), nullable=True),
        sa.Column("profit_factor", sa.Float(), nullable=True),
        sa.Column("sharpe", sa.Float(), nullable=True),
        sa.Column("report", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["strategy_runs.id"], name=op.f("fk_backtest_results_run_id_strategy_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_results")),
        sa.UniqueConstraint("run_id", name=op.f("uq_backtest_results_run_id")),
    )


def downgrade() -> None:
    """Revert the revision."""
    op.drop_table("backtest_results")
    op.drop_index(op.f("ix_strategy_runs_started_ns"), table_name="strategy_runs")

    op.drop_table("strategy_runs")
    op.drop_index(op.f("ix_risk_events_ts_ns"), table_name="risk_events")

    op.drop_table("risk_events")

    op.drop_table("position_snapshots")
    op.drop_index(op.f("ix_orders_account_id_is_open_ts_last_ns"), table_name="orders")

    op.drop_table("orders")
    op.drop_index(op.f("ix_order_events_account_id_ts_event_ns"), table_name="order_events")

    op.drop_table("order_events")
    op.drop_table("lockouts")
    op.drop_index(op.f("ix_fills_ts_event_ns"), table_name="fills")
    op.drop_index(op.f("ix_fills_client_order_id"), table_name="fills")

    op.drop_table("fills")
    op.drop_table("eod_balances")
    op.drop_table("bars")
    op.drop_table("bar_coverage")
    op.drop_table("accounts")
    op.drop_index(op.f("ix_account_snapshots_account_id_ts_ns"), table_name="account_snapshots")

    op.drop_table("account_snapshots")
