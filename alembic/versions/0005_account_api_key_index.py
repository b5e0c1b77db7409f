"""unique index on account.api_key_hash (the license API looks accounts up by it)

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-27
"""

from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_api_key_hash"), ["api_key_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_api_key_hash"))
