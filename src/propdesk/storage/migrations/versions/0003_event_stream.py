"""The sequenced event stream: one ``events`` table numbering every record the journal captures.

``events (seq BIGINT PRIMARY KEY, topic, account_id, ts_ns, run_id, payload)``: the journal numbers its records in
capture order, continuing from ``max(seq)`` when it opens, and its writer inserts one row per record beside the
record's own rows, in the same transaction (insert-or-ignore on ``seq``). One table rather than a ``seq`` column on
each event-bearing table: the replay is one range scan of the primary key (``WHERE seq > :after ORDER BY seq``)
instead of a union of seven differently shaped tables, and nothing changes on the node's thread (the writer derives
each number from the batch's last sequence number and the record's place in it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply the revision."""
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
    )


def downgrade() -> None:
    """Revert the revision."""
    op.drop_table("events")
