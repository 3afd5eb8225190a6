"""The desk's durable state: command results (idempotency), strategy instances and their parameter versions.

* ``command_results (account_id, idempotency_key)``: the first result the desk gave each command key, with a digest
  of the command's content (``content_digest``, SHA-256 hex of its canonical JSON without ``ts_ns``) and the
  result as JSON, so a command retried after a restart of ``propdesk serve`` gets the same answer and never a second
  order.
* ``strategy_instances (name)``: the named strategy instances ``propdesk serve`` runs: the account and contract each
  is bound to, the strategy reference (bundled name, ``module:Class`` or ``file.py:Class``), the desired state
  (running, paused, stopped) and the current parameter version.
* ``strategy_param_versions (instance, version)``: every parameter version of every instance (the full parameters
  as JSON, who changed them, from where, why, and when), so a restart resumes the latest and the history stays.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply the revision."""
    op.create_table(
        "command_results",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("command_type", sa.String(length=64), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "idempotency_key", name=op.f("pk_command_results")),
    )
    op.create_table(
        "strategy_instances",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("strategy", sa.String(length=512), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("desired_state", sa.String(length=16), nullable=False),
        sa.Column("params_version", sa.Integer(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_strategy_instances")),
    )
    op.create_table(
        "strategy_param_versions",
        sa.Column("instance", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("instance", "version", name=op.f("pk_strategy_param_versions")),
    )


def downgrade() -> None:
    """Revert the revision."""
    op.drop_table("strategy_param_versions")
    op.drop_table("strategy_instances")
    op.drop_table("command_results")
