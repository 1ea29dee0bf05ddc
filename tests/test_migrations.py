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


def test_registrations_stored_as_promotions_are_told_apart_on_upgrade(engine: Engine) -> None:
    """Rows written by the parser before issue 18: MLflow's model_version.created as a promotion (lead 0),
    the alias event as a promotion without registered_at. The data migration fixes both; downgrade and
    upgrade again round-trip."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from bot.kernel.db import upgrade
    from bot.kernel.models import ChangeEvent

    cfg = alembic_config(engine)
    from alembic.script import ScriptDirectory

    before = str(ScriptDirectory.from_config(cfg).get_revision("context").down_revision)  # the lead re-chains
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, before)
    registered, promoted = datetime(2026, 11, 22, 3, 0, tzinfo=UTC), datetime(2026, 11, 22, 3, 25, tzinfo=UTC)
    rows = [  # (model, version, title, occurred_at, registered_at) as the old parser stored them
        ("kpi-model", "4", "model kpi-model v4 registered", registered, registered),
        ("kpi-model", "4", "model kpi-model v4 promoted as champion", promoted, None),
        ("kpi-model", "9", "model kpi-model v9 promoted as champion", promoted, None),  # never registered
        ("fraud-model", "7", "fraud-model v7 to Production", promoted, None),  # another source's promotion
    ]
    with Session(engine) as session, session.begin():  # the model's own column types (no schema change)
        for model, version, title, occurred, reg in rows:
            session.add(
                ChangeEvent(
                    source="changes",
                    kind="model_promotion",
                    model_name=model,
                    version=version,
                    title=title,
                    occurred_at=occurred,
                    registered_at=reg,
                )
            )
    upgrade(engine)

    def state() -> list[tuple[str, str, bool]]:
        with engine.connect() as conn:
            got = conn.execute(text("SELECT title, kind, registered_at FROM change_events ORDER BY id")).all()
        return [(t, k, r is not None) for t, k, r in got]

    assert state() == [
        ("model kpi-model v4 registered", "model_registration", True),
        ("model kpi-model v4 promoted as champion", "model_promotion", True),
        ("model kpi-model v9 promoted as champion", "model_promotion", False),
        ("fraud-model v7 to Production", "model_promotion", False),
    ]
    with Session(engine) as session:
        promotion = session.scalars(select(ChangeEvent).where(ChangeEvent.title.like("%v4 promoted%"))).one()
    assert promotion.registered_at == registered
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, before)
    assert state()[0][1] == "model_promotion"
    upgrade(engine)
    assert state()[0][1] == "model_registration"
