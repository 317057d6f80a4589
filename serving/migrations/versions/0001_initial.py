"""Initial schema: keys, conversations, machine grades, reviews, disputes, audit log, jobs,
idempotency records and the effective-grade cache.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)
APPEND_ONLY = ("machine_grades", "reviews", "audit_log")


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _fk(name: str, target: str, **kw) -> sa.Column:
    kind = {"conversations.id": sa.String(200), "jobs.id": sa.String(36)}.get(target, sa.Integer())
    return sa.Column(name, kind, sa.ForeignKey(target), **kw)


def upgrade() -> None:
    op.create_table(
        "api_keys", _id(),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("revoked_at", Stamp, nullable=True),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("transcript", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.String(200), nullable=True),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("started_at", sa.String(64), nullable=True),
        sa.Column("started_date", sa.String(10), nullable=True),
        _fk("submitted_by", "api_keys.id", nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    for col in ("agent_id", "team", "started_date"):
        op.create_index(f"ix_conversations_{col}", "conversations", [col])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _fk("submitted_by", "api_keys.id", nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.Column("finished_at", Stamp, nullable=True),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "machine_grades", _id(),
        _fk("conversation_id", "conversations.id", nullable=False),
        sa.Column("grade_json", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(32), nullable=False),
        sa.Column("red_line", sa.Boolean(), nullable=False),
        sa.Column("rubric_id", sa.String(100), nullable=False),
        sa.Column("rubric_version", sa.String(100), nullable=False),
        sa.Column("model_info", sa.Text(), nullable=False),
        _fk("submitted_by", "api_keys.id", nullable=True),
        _fk("job_id", "jobs.id", nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_machine_grades_conversation_id", "machine_grades", ["conversation_id"])
    op.create_index("ix_machine_grades_submitted_by", "machine_grades", ["submitted_by"])
    op.create_table(
        "disputes", _id(),
        _fk("conversation_id", "conversations.id", nullable=False),
        sa.Column("item_id", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _fk("filed_by_key_id", "api_keys.id", nullable=True),
        sa.Column("filed_by", sa.String(200), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        _fk("resolver_key_id", "api_keys.id", nullable=True),
        sa.Column("resolver", sa.String(200), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("resolved_at", Stamp, nullable=True),
    )
    op.create_index("ix_disputes_conversation_id", "disputes", ["conversation_id"])
    op.create_index("ix_disputes_status", "disputes", ["status"])
    op.create_table(
        "reviews", _id(),
        _fk("conversation_id", "conversations.id", nullable=False),
        _fk("machine_grade_id", "machine_grades.id", nullable=False),
        _fk("reviewer_key_id", "api_keys.id", nullable=True),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        _fk("dispute_id", "disputes.id", nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_reviews_conversation_id", "reviews", ["conversation_id"])
    op.create_table(
        "audit_log", _id(),
        sa.Column("at", Stamp, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        _fk("actor_key_id", "api_keys.id", nullable=True),
        sa.Column("actor_role", sa.String(16), nullable=True),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("object_type", sa.String(50), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("conversation_id", sa.String(200), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("why", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_log_conversation_id", "audit_log", ["conversation_id"])
    op.create_table(
        "job_items", _id(),
        _fk("job_id", "jobs.id", nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("job_id", "position", name="uq_job_items_job_position"),
    )
    op.create_table(
        "job_results", _id(),
        _fk("job_id", "jobs.id", nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(200), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("is_error", sa.Boolean(), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.UniqueConstraint("job_id", "position", name="uq_job_results_job_position"),
    )
    op.create_table(
        "idempotency", _id(),
        _fk("api_key_id", "api_keys.id", nullable=False),
        sa.Column("route", sa.String(100), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.UniqueConstraint("api_key_id", "route", "key", name="uq_idempotency_key_route"),
    )
    op.create_table(
        "effective_grades",
        sa.Column("conversation_id", sa.String(200), sa.ForeignKey("conversations.id"), primary_key=True),
        _fk("machine_grade_id", "machine_grades.id", nullable=False),
        sa.Column("machine_score", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(32), nullable=False),
        sa.Column("red_line", sa.Boolean(), nullable=False),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.Column("relabeled", sa.Boolean(), nullable=False),
        sa.Column("grade_json", sa.Text(), nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    op.create_index("ix_effective_grades_score", "effective_grades", ["score"])
    op.create_table(
        "effective_behaviors",
        sa.Column("conversation_id", sa.String(200), sa.ForeignKey("conversations.id"), primary_key=True),
        sa.Column("turn", sa.Integer(), primary_key=True),
        sa.Column("behavior", sa.String(50), primary_key=True),
    )
    op.create_index("ix_effective_behaviors_behavior", "effective_behaviors", ["behavior", "conversation_id"])
    op.create_table(
        "effective_failures", _id(),
        _fk("conversation_id", "conversations.id", nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.String(100), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=True),
    )
    op.create_index("ix_effective_failures_conversation_id", "effective_failures", ["conversation_id"])
    op.create_index("ix_effective_failures_kind_ref", "effective_failures", ["kind", "ref_id", "conversation_id"])
    _append_only_guards()


def _append_only_guards() -> None:
    """Stored machine grades, reviews and audit records can be added, never edited."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
    elif dialect == "postgresql":
        op.execute("CREATE FUNCTION grader_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION grader_append_only()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        if dialect in ("sqlite", "postgresql"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only" + (f" ON {table}" if dialect == "postgresql" else ""))
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS grader_append_only()")
    for table in ("effective_failures", "effective_behaviors", "effective_grades", "idempotency", "job_results",
                  "job_items", "audit_log", "reviews", "disputes", "machine_grades", "jobs", "conversations", "api_keys"):
        op.drop_table(table)
