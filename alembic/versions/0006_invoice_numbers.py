"""invoice numbers of our own (for invoices Stripe gave none)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_number",
        sa.Column(
            "stripe_invoice_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False
        ),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("assigned_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
        ),
        sa.PrimaryKeyConstraint("stripe_invoice_id"),
        sa.UniqueConstraint("account_id", "sequence"),
        sa.UniqueConstraint("number"),
    )
    with op.batch_alter_table("invoice_number", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoice_number_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("invoice_number", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_number_account_id"))

    op.drop_table("invoice_number")
