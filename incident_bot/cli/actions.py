"""``incident-bot actions freeze|unfreeze`` (the kill switch) and ``incident-bot audit export``."""

from __future__ import annotations

import argparse
import csv
import getpass
import hashlib
import json
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.kernel.config import Settings
from bot.kernel.db import make_engine, make_sessionmaker, transaction, upgrade
from bot.kernel.db_types import utcnow
from bot.kernel.models import AuditEvent, RemediationRequest
from bot.kernel.periods import parse_period
from bot.remediation import killswitch

FIELDS = (
    "at",
    "actor",
    "event",
    "incident_id",
    "request_id",
    "action_id",
    "action_type",
    "payload_sha256",
    "detail",
)


def parse_since(text: str) -> timedelta:
    """The shared period parser (bot/kernel/periods.py), as an argparse type."""
    try:
        return parse_period(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--since: {exc}") from None


def payload_hash(action: dict[str, Any] | None) -> str | None:
    """SHA-256 of the request's stored action spec (canonical JSON): what was approved, verifiably."""
    if action is None:
        return None
    return hashlib.sha256(json.dumps(action, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def audit_rows(settings: Settings, since: timedelta) -> list[dict[str, Any]]:
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.execute(
                select(AuditEvent, RemediationRequest)
                .outerjoin(RemediationRequest, RemediationRequest.id == AuditEvent.request_id)
                .where(AuditEvent.at >= utcnow() - since)
                .order_by(AuditEvent.id)
            ).all()
            return [
                {
                    "at": ev.at.isoformat(),
                    "actor": ev.actor,
                    "event": ev.event,
                    "incident_id": ev.incident_id,
                    "request_id": ev.request_id,
                    "action_id": req.action_id if req else None,
                    "action_type": req.action_type if req else None,
                    "payload_sha256": payload_hash(req.action) if req else None,
                    "detail": ev.detail or {},
                }
                for ev, req in rows
            ]
    finally:
        engine.dispose()


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> int:
    rows = audit_rows(settings, args.since)
    if args.format == "jsonl":
        for r in rows:
            sys.stdout.write(json.dumps(r, sort_keys=True, default=str) + "\n")
    else:
        w = csv.DictWriter(sys.stdout, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({**r, "detail": json.dumps(r["detail"], sort_keys=True, default=str)})
    return 0


def cmd_freeze(args: argparse.Namespace, settings: Settings, *, frozen: bool) -> int:
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        actor = f"cli:{getpass.getuser()}"
        with transaction(make_sessionmaker(engine)) as session:
            # the channel line and the prompts' re-renders are outbox rows: a running replica sends them
            changed = killswitch.freeze(session, frozen=frozen, actor=actor, reason=args.reason)
    finally:
        engine.dispose()
    state = "frozen" if frozen else "unfrozen"
    print(
        f"remediation actions {state}"
        + (" (already)" if not changed else "; the incident channel is told by the running bot")
    )
    return 0


def register(sub: Any, settings: Callable[[], Settings]) -> None:
    acts = sub.add_parser("actions", help="remediation actions").add_subparsers(
        dest="actions_command", required=True
    )
    for name, frozen in (("freeze", True), ("unfreeze", False)):
        p = acts.add_parser(name, help=f"{name} every remediation action (kill switch, kept in the database)")
        p.add_argument("--reason", default=None)
        p.set_defaults(func=lambda a, f=frozen: cmd_freeze(a, settings(), frozen=f))
    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="audit_command", required=True)
    p = audit.add_parser("export", help="export audit events (who, what, when, request payload hash)")
    p.add_argument(
        "--since", type=parse_since, default=parse_since("30d"), help="e.g. 30d, 12h, 90m (default 30d)"
    )
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.set_defaults(func=lambda a: cmd_audit_export(a, settings()))
