"""changes scheduled for the next renewal (fewer licenses, monthly billing)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "stripe_schedule_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True
            )
        )
        batch_op.add_column(sa.Column("scheduled_licenses", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "scheduled_interval", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("scheduled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("scheduled_at")
        batch_op.drop_column("scheduled_interval")
        batch_op.drop_column("scheduled_licenses")
        batch_op.drop_column("stripe_schedule_id")
