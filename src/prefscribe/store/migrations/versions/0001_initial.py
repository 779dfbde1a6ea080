"""The schema of prefscribe 0.1 (the store before migrations), frozen: tenants, keys, users, batches,
interactions and profile versions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# BIGINT keys on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", When, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("created_at", When, nullable=False),
        sa.Column("revoked_at", When),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("interaction_count", sa.Integer, nullable=False),
        sa.Column("covered_through", sa.Integer, nullable=False),
        sa.Column("head_version", sa.Integer, nullable=False),
        sa.Column("version_count", sa.Integer, nullable=False),
        sa.Column("refresh_requested", sa.Boolean, nullable=False),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_until", sa.Float),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("retry_at", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", When, nullable=False),
        sa.UniqueConstraint("tenant_id", "external_id"),
    )
    op.create_table(
        "ingest_batches",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.UniqueConstraint("user_id", "idempotency_key"),
    )
    op.create_table(
        "interactions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("batch_id", BigId, sa.ForeignKey("ingest_batches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("context", sa.Text),
        sa.Column("chosen", sa.Text, nullable=False),
        sa.Column("rejected", sa.Text),
        sa.Column("item_id", sa.String(200)),
        sa.Column("timestamp", sa.JSON),
        sa.Column("domain", sa.String(200)),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.UniqueConstraint("user_id", "seq"),
    )
    op.create_index("ix_interactions_batch_id", "interactions", ["batch_id"])
    op.create_table(
        "profile_versions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("parent", sa.Integer),
        sa.Column("author", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("editor", sa.String(200)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("reasoning", sa.Text),
        sa.Column("model", sa.String(500)),
        sa.Column("prompt_version", sa.String(100)),
        sa.Column("covers", sa.Integer, nullable=False),
        sa.Column("first_seq", sa.Integer),
        sa.Column("last_seq", sa.Integer),
        sa.Column("covered_through", sa.Integer, nullable=False),
        sa.Column("rollback_of", sa.Integer),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.UniqueConstraint("user_id", "number"),
    )


def downgrade() -> None:
    for table in ("profile_versions", "interactions", "ingest_batches", "users", "api_keys", "tenants"):
        op.drop_table(table)
