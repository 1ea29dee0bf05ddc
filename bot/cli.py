"""The ``incident-bot`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import SAMPLE_DATA, Settings


def _settings() -> Settings:
    return Settings()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.app import ConfigError, build_runtime
    from bot.config import secret_value

    settings = _settings()
    try:
        rt = build_runtime(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scheduler = BackgroundScheduler(timezone="UTC")

    kb = rt.service.s.kb

    def refit() -> None:
        report = kb.refit_weights()
        if report is not None:
            logging.getLogger("bot.refit").info("fusion weights refit from feedback: %s", report)

    refit()
    scheduler.add_job(refit, "interval", hours=6, id="refit-weights", max_instances=1, coalesce=True)
    scheduler.add_job(rt.service.retry_unposted, "interval", seconds=60, id="retry-unposted", max_instances=1, coalesce=True)
    try:
        add_kpi_jobs(scheduler, rt)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        rt.close()
        return 2
    register_kpi_metrics(rt)
    scheduler.start()
    app_token = secret_value(settings.slack_app_token)
    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        SocketModeHandler(rt.bolt, app_token).connect()
        logging.getLogger(__name__).info("Slack traffic over Socket Mode; alert endpoints on HTTP")
    try:
        uvicorn.run(rt.http, host=args.host, port=args.port, log_level=settings.log_level.lower())
    finally:
        scheduler.shutdown(wait=False)
        rt.close()
    return 0


def register_kpi_metrics(rt) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import REGISTRY

    from bot.kpi_metrics import KpiCollector

    REGISTRY.register(KpiCollector(rt.service.s.sessions))  # served on /metrics


def add_kpi_jobs(scheduler, rt) -> None:  # type: ignore[no-untyped-def]
    """Weekly digest, ack reminder/escalation, RCA reminder (bot/jobs.py); each off when its setting is 0/""."""
    from bot import jobs
    from bot.db_types import utcnow
    from handlers.slack_jobs import SlackJobChat

    s = rt.settings
    kw = {"sessions": rt.service.s.sessions, "settings": s,
          "chat": SlackJobChat(client=rt.bolt.client, channel=s.incident_channel)}

    def run(fn):  # type: ignore[no-untyped-def]
        return lambda: fn(now=utcnow(), **kw)

    once = {"max_instances": 1, "coalesce": True}
    if s.ack_reminder_minutes > 0 or s.ack_escalation_minutes > 0:
        scheduler.add_job(run(jobs.ack_reminders), "interval", minutes=1, id="ack-reminders", **once)
    if s.rca_reminder_hours > 0:
        scheduler.add_job(run(jobs.rca_reminders), "interval", minutes=15, id="rca-reminders", **once)
    trigger = jobs.digest_trigger(s.digest_schedule)
    if trigger is not None:
        scheduler.add_job(run(jobs.weekly_digest), "cron", timezone="UTC", id="weekly-digest", **trigger, **once)


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(keep_db=args.keep_db)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.db import make_engine, upgrade

    engine = make_engine(_settings().database_url)
    upgrade(engine, args.revision)
    print(f"database at {args.revision} ({engine.url.render_as_string(hide_password=True)})")
    return 0


def cmd_runbooks_import(args: argparse.Namespace) -> int:
    from bot import runbook_store
    from bot.db import make_engine, make_sessionmaker, transaction, upgrade

    engine = make_engine(_settings().database_url)
    upgrade(engine)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            rep = runbook_store.import_dir(session, Path(args.dir))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for err in rep.errors:
        print(f"skipped: {err}", file=sys.stderr)
    print(f"runbooks: {len(rep.inserted)} inserted, {len(rep.updated)} updated, "
          f"{len(rep.unchanged)} unchanged, {len(rep.errors)} skipped")
    return 0 if (rep.inserted or rep.updated or rep.unchanged) else 1


def cmd_runbooks_list(args: argparse.Namespace) -> int:
    from bot import runbook_store
    from bot.db import make_engine, make_sessionmaker, upgrade

    engine = make_engine(_settings().database_url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        for rb in runbook_store.all_runbooks(session):
            match = ", ".join(rb.alert_names + rb.services + rb.models) or "-"
            print(f"{rb.id:28} {rb.title}  [matches: {match}]  actions: {len(rb.actions)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from bot.cli_kb import register as register_kb
    from bot.cli_kpi import register as register_kpi

    parser = argparse.ArgumentParser(prog="incident-bot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP server (alerts + Slack)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="the whole flow offline: alerts -> Slack messages -> approval -> audit")
    p.add_argument("--keep-db", type=Path, default=None, help="write the demo database here instead of a temp dir")
    p.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="apply Alembic migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_db_upgrade)

    rb = sub.add_parser("runbooks", help="runbooks").add_subparsers(dest="rb_command", required=True)
    p = rb.add_parser("import", help="import Markdown runbooks from a folder")
    p.add_argument("dir", nargs="?", default=str(SAMPLE_DATA / "runbooks"))
    p.set_defaults(func=cmd_runbooks_import)
    rb.add_parser("list", help="list runbooks").set_defaults(func=cmd_runbooks_list)

    def build_kb():  # type: ignore[no-untyped-def]
        from bot.app import build_kb as _build

        return _build(_settings())

    register_kb(sub, build_kb)

    def kpi_sessions():  # type: ignore[no-untyped-def]
        from bot.db import make_engine, make_sessionmaker, upgrade

        engine = make_engine(_settings().database_url)
        upgrade(engine)
        return make_sessionmaker(engine)

    register_kpi(sub, kpi_sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
