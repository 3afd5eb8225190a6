"""Every run kept apart: the run id on every record a node journals, the venue session in the identity of fills
(and of the records keyed by trade ids or event times), and the owner, heartbeat and replay key of each strategy run.

* ``orders``, ``order_events``: ``run_id``.
* ``fills``, ``position_snapshots``, ``account_snapshots``, ``risk_events``: ``run_id`` and ``venue_session``
  (``''`` for existing rows: their ids were unique in the account, which is what the empty venue session means); the
  unique key gains ``venue_session`` as its last column.
* ``strategy_runs``: ``run_key`` (indexed), ``host``, ``pid``, ``pid_start``, ``heartbeat_ns``, ``attempts``; the
  statuses ``done`` and ``interrupted`` become ``completed`` and ``stopped``. Runs left ``running`` have no owner
  recorded: the next start marks them aborted (:mod:`propdesk.storage.runs`).

SQLite changes constraints by copying each table (Alembic's batch mode); PostgreSQL alters in place. Downgrading
drops the new columns; where two venue sessions hold the same old key, the oldest row is kept.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SCOPED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fills", ("account_id", "trade_id")),
    ("position_snapshots", ("account_id", "position_tag", "symbol", "trade_id", "kind")),
    ("account_snapshots", ("account_id", "kind", "ts_ns", "ref")),
    ("risk_events", ("account_id", "event_key")),
)
"""Tables whose unique key gains ``venue_session``, with their revision-0001 key."""


def _uq(table: str, cols: tuple[str, ...]) -> str:
    return f"uq_{table}_{'_'.join(cols)}"


def upgrade() -> None:
    """Apply the revision."""
    for table in ("orders", "order_events"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("run_id", sa.String(length=36), nullable=True))
    for table, key in _SCOPED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("run_id", sa.String(length=36), nullable=True))
            batch.add_column(sa.Column("venue_session", sa.String(length=64), server_default="", nullable=False))
            batch.drop_constraint(op.f(_uq(table, key)), type_="unique")
            batch.create_unique_constraint(op.f(_uq(table, (*key, "venue_session"))), [*key, "venue_session"])
    with op.batch_alter_table("strategy_runs") as batch:
        batch.add_column(sa.Column("run_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("host", sa.String(length=255), server_default="", nullable=False))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pid_start", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("heartbeat_ns", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="1", nullable=False))
        batch.create_index(op.f("ix_strategy_runs_run_key"), ["run_key"], unique=False)
    op.execute("UPDATE strategy_runs SET status = 'completed' WHERE status = 'done'")
    op.execute("UPDATE strategy_runs SET status = 'stopped' WHERE status = 'interrupted'")


def downgrade() -> None:
    """Revert the revision (see the module docstring)."""
    op.execute("UPDATE strategy_runs SET status = 'done' WHERE status = 'completed'")
    op.execute("UPDATE strategy_runs SET status = 'interrupted' WHERE status = 'stopped'")
    with op.batch_alter_table("strategy_runs") as batch:
        batch.drop_index(op.f("ix_strategy_runs_run_key"))
        for col in ("attempts", "heartbeat_ns", "pid_start", "pid", "host", "run_key"):
            batch.drop_column(col)
    for table, key in _SCOPED:
        same = " AND ".join(f"older.{c} = {table}.{c}" for c in key)
        op.execute(
            f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {table} older WHERE {same} AND older.id < {table}.id)"
        )
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(_uq(table, (*key, "venue_session"))), type_="unique")
            batch.create_unique_constraint(op.f(_uq(table, key)), list(key))
            batch.drop_column("venue_session")
            batch.drop_column("run_id")
    for table in ("order_events", "orders"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("run_id")
