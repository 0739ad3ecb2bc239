"""policy: audit sampling, four eyes, recalibration, review SLA

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('routing_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inclusion_probability', sa.Double(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('audit', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Before audit sampling, an auto-approved item was never going to be seen by a person.
    op.execute("UPDATE routing_records SET inclusion_probability = 0 WHERE route = 'auto_approve'")

    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('require_four_eyes', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('review_sla_hours', sa.Double(), server_default='24', nullable=False))

    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_rate', sa.Double(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('recalibration', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('rollback_of', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=20), server_default='active', nullable=False))
        batch_op.add_column(sa.Column('decided_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_policy_versions_decided_by_id_users'), 'users', ['decided_by_id'], ['id'])
    # The highest version was the one in force; every older one becomes retired.
    op.execute(
        "UPDATE policy_versions SET status = 'retired' WHERE version < "
        "(SELECT MAX(p.version) FROM policy_versions p WHERE p.queue_id = policy_versions.queue_id)"
    )
    op.execute("UPDATE policy_versions SET activated_at = created_at WHERE status = 'active'")


def downgrade() -> None:
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_policy_versions_decided_by_id_users'), type_='foreignkey')
        batch_op.drop_column('activated_at')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('decided_by_id')
        batch_op.drop_column('status')
        batch_op.drop_column('rollback_of')
        batch_op.drop_column('recalibration')
        batch_op.drop_column('audit_rate')

    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.drop_column('review_sla_hours')
        batch_op.drop_column('require_four_eyes')

    with op.batch_alter_table('routing_records', schema=None) as batch_op:
        batch_op.drop_column('audit')
        batch_op.drop_column('inclusion_probability')
