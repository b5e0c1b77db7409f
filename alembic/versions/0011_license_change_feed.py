"""the license changes feed (cached check answers are dropped from it)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "license_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("license_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_license_change_changed_at"), ["changed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("license_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_license_change_changed_at"))
    op.drop_table("license_change")
