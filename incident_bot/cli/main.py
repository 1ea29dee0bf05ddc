"""The ``incident-bot`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.kernel.config import SAMPLE_DATA, Settings, load_settings
from bot.kernel.errors import ConfigError

if TYPE_CHECKING:  # imported lazily below: `incident-bot --help` loads no model and no database driver
    from sqlalchemy.orm import Session, sessionmaker

    from bot.advice.knowledge import KnowledgeBase


def _settings() -> Settings:
    """Every command reads its settings here: a bad value is a ConfigError with one line per variable,
    which ``main`` prints (``error: SLACK_TIMEOUT_SECONDS='soon': not a number; e.g. ...``) with exit 2."""
    return load_settings()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from incident_bot.doctor import run_checks
    from incident_bot.logging_setup import configure
    from incident_bot.runtime import build_runtime

    settings = _settings()  # a bad value: one line per variable, exit 2 (main)
    checks = run_checks(settings, embeddings=False)  # the same checks as `incident-bot doctor`
    failed = [c for c in checks if c.status == "fail"]
    if failed:  # fail fast: one line naming the setting and the fix (`incident-bot doctor` shows all)
        print(f"error: {failed[0].line()}", file=sys.stderr)
        return 2
    configure(level=settings.log_level, fmt=settings.log_format, verbose=args.verbose)
    for c in checks:
        if c.status == "warn":
            logging.getLogger(__name__).warning("%s", c.line())
    try:
        rt = build_runtime(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        rt.kb.encoder.encode(["warm up"])  # load the model now, not at the first page
    except Exception as exc:
        print(
            f"error: EMBEDDING_MODEL_PATH/EMBEDDING_BACKEND: cannot load the embedding model "
            f"({type(exc).__name__}: {str(exc)[:160]})",
            file=sys.stderr,
        )
        rt.close()
        return 2
    rt.start(
        outbox_threads=settings.outbox_workers
    )  # Slack delivery and scheduled jobs, off the request path
    if rt.socket_mode is not None:  # SLACK_APP_TOKEN is set
        rt.socket_mode.connect()
    try:
        uvicorn.run(
            rt.http, host=args.host, port=args.port, log_level=settings.log_level.lower(), log_config=None
        )  # uvicorn's loggers go through our handler (JSON when asked)
    finally:
        rt.close()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from incident_bot.doctor import run_checks, table

    try:
        settings = _settings()
    except ConfigError as exc:  # the same validation as serve: one line per bad variable
        print("\n".join(f"FAIL  settings  {line}" for line in str(exc).splitlines()))
        return 1
    checks = run_checks(settings, embeddings=not args.skip_model)
    print(table(checks))
    return 1 if any(c.status == "fail" for c in checks) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from incident_bot.demo.run import run_demo

    return run_demo(keep_db=args.keep_db)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.kernel.db import make_engine, upgrade

    engine = make_engine(_settings().database_url)
    upgrade(engine, args.revision)
    print(f"database at {args.revision} ({engine.url.render_as_string(hide_password=True)})")
    return 0


def cmd_runbooks_import(args: argparse.Namespace) -> int:
    import httpx

    from bot.kernel.db import make_engine, make_sessionmaker, transaction, upgrade
    from bot.remediation import runbook_store
    from incident_bot.runtime import build_executors

    if args.dir is None and not args.samples:
        print(
            "error: give the folder of Markdown runbooks (e.g. `incident-bot runbooks import ./runbooks`), "
            "or --samples to load the bundled examples",
            file=sys.stderr,
        )
        return 2
    folder = Path(args.dir) if args.dir is not None else SAMPLE_DATA / "runbooks"
    settings = _settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        with httpx.Client() as client, transaction(make_sessionmaker(engine)) as session:
            rep = runbook_store.import_dir(session, folder, registry=build_executors(settings, client))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for err in rep.errors:
        print(f"skipped: {err}", file=sys.stderr)
    for warning in rep.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"runbooks: {len(rep.inserted)} inserted, {len(rep.updated)} updated, "
        f"{len(rep.unchanged)} unchanged, {len(rep.errors)} skipped"
    )
    if rep.errors:  # a skipped runbook is one the on-call will not see: fail loudly (CI, deploy scripts)
        print(f"error: {len(rep.errors)} runbook(s) skipped; fix them and import again", file=sys.stderr)
        return 1
    return 0 if (rep.inserted or rep.updated or rep.unchanged) else 1


def cmd_runbooks_list(args: argparse.Namespace) -> int:
    from bot.kernel.db import make_engine, make_sessionmaker, upgrade
    from bot.remediation import runbook_store

    engine = make_engine(_settings().database_url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        for rb in runbook_store.all_runbooks(session):
            match = ", ".join(rb.alert_names + rb.services + rb.models) or "-"
            print(f"{rb.id:28} {rb.title}  [matches: {match}]  actions: {len(rb.actions)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from incident_bot.cli.actions import register as register_actions
    from incident_bot.cli.catalog import register as register_catalog
    from incident_bot.cli.kb import register as register_kb
    from incident_bot.cli.kpi import register as register_kpi
    from incident_bot.cli.noise import register as register_noise
    from incident_bot.cli.settings import register as register_settings

    parser = argparse.ArgumentParser(prog="incident-bot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP server (alerts + Slack)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "doctor", help="check settings, database, Slack, runbooks and the model; print a table"
    )
    p.add_argument("--skip-model", action="store_true", help="do not load the embedding model")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("demo", help="the whole flow offline: alerts -> Slack messages -> approval -> audit")
    p.add_argument(
        "--keep-db", type=Path, default=None, help="write the demo database here instead of a temp dir"
    )
    p.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="apply Alembic migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_db_upgrade)

    rb = sub.add_parser("runbooks", help="runbooks").add_subparsers(dest="rb_command", required=True)
    p = rb.add_parser("import", help="import Markdown runbooks from a folder")
    p.add_argument("dir", nargs="?", default=None, help="folder of Markdown runbooks")
    p.add_argument("--samples", action="store_true", help="import the bundled sample runbooks (demo/trial)")
    p.set_defaults(func=cmd_runbooks_import)
    rb.add_parser("list", help="list runbooks").set_defaults(func=cmd_runbooks_list)

    def build_kb() -> KnowledgeBase:
        from incident_bot.runtime import build_kb as _build

        return _build(_settings())

    register_kb(sub, build_kb, _settings)
    register_noise(sub, _settings)
    register_actions(sub, _settings)
    register_catalog(sub, _settings)
    register_settings(sub)

    def kpi_sessions() -> sessionmaker[Session]:
        from bot.kernel.db import make_engine, make_sessionmaker, upgrade

        engine = make_engine(_settings().database_url)
        upgrade(engine)
        return make_sessionmaker(engine)

    register_kpi(sub, kpi_sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:  # a bad setting, from any command: one line per problem, no traceback
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
