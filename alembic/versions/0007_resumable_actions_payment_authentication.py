"""resumable billing actions, payments awaiting authentication, ordered re-syncs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "unpaid_requires_action", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(
            sa.Column("stripe_synced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("billing_action", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("billing_action", schema=None) as batch_op:
        batch_op.drop_column("progress")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("stripe_synced_at")
        batch_op.drop_column("unpaid_requires_action")
