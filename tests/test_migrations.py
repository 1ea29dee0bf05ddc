from sqlalchemy import Engine, inspect, text

from bot.kernel.db import alembic_config

EXPECTED = {
    "alert_payloads",
    "dead_letters",
    "incidents",
    "alerts",
    "knowledge_documents",
    "knowledge_chunks",
    "runbooks",
    "remediation_requests",
    "approvals",
    "audit_events",
    "feedback",
    "suggestions",
    "change_events",
    "incident_links",
    "noise_counts",
    "remediation_controls",
    "outbox",
    "job_leases",
}


def test_migrations_create_every_table_at_head(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert EXPECTED <= tables
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    from alembic.script import ScriptDirectory

    assert version == ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def test_postgres_has_hnsw_index_on_embeddings(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        defs = [
            r[0]
            for r in conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE tablename = 'knowledge_chunks'")
            )
        ]
    assert any("hnsw" in d and "vector_cosine_ops" in d for d in defs)
