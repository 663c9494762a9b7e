"""Rewards that wait for the conversions: outcome days, restated rewards and their history; stopped accounts.

`trajectories` gains the outcome day, its latest reading, the restatement horizon, the first reward and a
restatement count; `reward_restatements` keeps every change of a matured reward; `runs.account_errors`
names the accounts a run stopped (a configuration mismatch, an unreadable account).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the columns (batch mode: SQLite rebuilds the table) and create `reward_restatements`."""
    with op.batch_alter_table("trajectories") as batch:
        batch.add_column(sa.Column("outcome_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("restate_until", _TS, nullable=True))
        batch.add_column(sa.Column("first_reward", sa.Float(), nullable=True))
        batch.add_column(sa.Column("restatements", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("restated_at", _TS, nullable=True))
    # Rewards matured before this revision were never restated: their first value is their value.
    op.execute("UPDATE trajectories SET first_reward = reward WHERE matured_at IS NOT NULL")
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("account_errors", sa.JSON(), nullable=True))
    op.create_table(
        "reward_restatements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trajectory_id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.String(length=96), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("old_reward", sa.Float(), nullable=True),
        sa.Column("new_reward", sa.Float(), nullable=True),
        sa.Column("old_outcome", sa.JSON(), nullable=True),
        sa.Column("new_outcome", sa.JSON(), nullable=False),
        sa.Column("reward_components", sa.JSON(), nullable=True),
        sa.Column("restated_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["trajectory_id"], ["trajectories.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reward_restatements_trajectory_id", "reward_restatements", ["trajectory_id"])
    op.create_index("ix_reward_restatements_account_id", "reward_restatements", ["account_id"])


def downgrade() -> None:
    """Drop what `upgrade` added."""
    op.drop_index("ix_reward_restatements_account_id", table_name="reward_restatements")
    op.drop_index("ix_reward_restatements_trajectory_id", table_name="reward_restatements")
    op.drop_table("reward_restatements")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("account_errors")
    with op.batch_alter_table("trajectories") as batch:
        for column in ("restated_at", "restatements", "first_reward", "restate_until", "outcome", "outcome_date"):
            batch.drop_column(column)
