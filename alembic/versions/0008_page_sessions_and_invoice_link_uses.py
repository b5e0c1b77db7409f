"""page sessions (signed-in tabs) and used invoice PDF links

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_session",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("page_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_page_session_account_id"), ["account_id"], unique=False
        )
    op.create_table(
        "invoice_link_use",
        sa.Column("link_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("link_id"),
    )
    with op.batch_alter_table("invoice_link_use", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoice_link_use_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("invoice_link_use", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_link_use_expires_at"))
    op.drop_table("invoice_link_use")
    with op.batch_alter_table("page_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_page_session_account_id"))
    op.drop_table("page_session")
