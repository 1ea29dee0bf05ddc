"""Engine, sessions and schema upgrades (Alembic is the only way the schema is made)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
_MIGRATION_LOCK = 0x1B_0DB_0001  # advisory lock id held while Alembic runs (PostgreSQL)
# Execution option: on SQLite, begin this connection's transaction with BEGIN IMMEDIATE (the database's write
# lock, taken before the first read). See ``_sqlite_begin`` and bot/kernel/locks.py ``locked``.
SQLITE_BEGIN_IMMEDIATE = "incident_bot_sqlite_begin_immediate"


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    # A pooled connection is checked before use, so a database restart costs the next request nothing:
    # a dead connection is replaced instead of failing (the process recovers without a restart).
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(conn: Connection) -> None:
    """A transaction that must decide from what it reads (bot/kernel/locks.py ``locked``) begins with
    ``BEGIN IMMEDIATE``, emitted here, before its first statement: pysqlite's own implicit BEGIN comes only
    before the first INSERT/UPDATE, so a status read before it was read outside any transaction and two
    deciders could both see 'pending' (``FOR UPDATE`` does nothing on SQLite). Other transactions keep
    pysqlite's deferred BEGIN: a real BEGIN before every read would make each read-then-write transaction
    fail with SQLITE_BUSY_SNAPSHOT (no busy wait) when another connection committed meanwhile (outbox
    claims, triage). pysqlite sees the transaction we opened (``in_transaction``) and adds no BEGIN of its
    own; its commit/rollback end it."""
    if conn.get_execution_options().get(SQLITE_BEGIN_IMMEDIATE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def alembic_config(engine: Engine) -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # replicas starting together migrate one at a time
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with sessions() as session, session.begin():
        yield session


def schema_status(engine: Engine) -> str:
    """ "ok" when the database is at the migrations' head, else what it is at (raises if unreachable)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        try:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:
            return "not migrated: run `incident-bot db upgrade`"
    return "ok" if current == head else f"at {current}, head is {head}: run `incident-bot db upgrade`"


def database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached right now (down, restarting, a dropped connection, the pool
    exhausted, SQLite busy): a condition to wait out, not a fault of the request or a bug."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.TimeoutError)


def short_error(exc: BaseException, limit: int = 200) -> str:
    """The first line of the driver's message (SQLAlchemy appends the statement and a link), for a
    one-line log."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first[:limit]}"
