"""Runbooks in the database: imported from a folder of Markdown files, read back as retrieval Runbooks.

Each runbook's actions are validated on import against the executor registry (typed ``params`` per action
type); a runbook with a bad action is skipped with an error naming the file and the field, and what is
stored is the normalised, validated action spec (templates kept as written: they are rendered per request).
An action whose executor is not configured here is imported with a warning naming the setting that enables
it (``action type 'mlflow_rollback' needs MLFLOW_TRACKING_URI``); it is shown, not offered, until it is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kernel import audit
from bot.kernel.db_types import utcnow
from bot.kernel.models import Runbook as RunbookRow
from bot.remediation.actions import ActionError, ActionSpec, validate_actions
from bot.remediation.base import Executor
from bot.remediation.registry import not_configured
from retrieval.runbooks import Runbook, load_runbooks


@dataclass
class RunbookImport:
    inserted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one per skipped runbook
    warnings: list[str] = field(default_factory=list)  # imported, but an action cannot run here yet


def import_dir(
    session: Session, directory: Path, *, registry: Mapping[str, Executor], actor: str = "cli"
) -> RunbookImport:
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"runbooks directory not found: {directory}")
    runbooks, errors = load_runbooks(directory)
    report = RunbookImport(errors=errors)
    for rb in runbooks:
        try:
            specs = validate_actions(rb.actions, registry, path=rb.path or rb.id)
        except ActionError as exc:
            report.errors.append(str(exc))
            continue
        rb.actions = [a.stored() for a in specs]
        report.warnings += [
            f"{rb.path or rb.id}: actions[{i}].type: {not_configured(a.type)}; "
            "imported, not offered until it is set"
            for i, a in enumerate(specs)
            if a.type not in registry
        ]
        row = session.get(RunbookRow, rb.id)
        spec = rb.to_spec()
        if row is None:
            session.add(
                RunbookRow(id=rb.id, title=rb.title, path=rb.path, spec=spec, content_hash=rb.content_hash)
            )
            report.inserted.append(rb.id)
        elif row.content_hash != rb.content_hash:
            row.title, row.path, row.spec, row.content_hash = rb.title, rb.path, spec, rb.content_hash
            row.updated_at = utcnow()
            report.updated.append(rb.id)
        else:
            report.unchanged.append(rb.id)
    if report.inserted or report.updated:
        audit.record(
            session,
            event="runbooks.imported",
            actor=actor,
            directory=str(directory),
            inserted=report.inserted,
            updated=report.updated,
        )
    return report


def all_runbooks(session: Session) -> list[Runbook]:
    return [Runbook.from_spec(r.spec) for r in session.scalars(select(RunbookRow).order_by(RunbookRow.id))]


def get_runbook(session: Session, runbook_id: str) -> Runbook | None:
    row = session.get(RunbookRow, runbook_id)
    return Runbook.from_spec(row.spec) if row is not None else None


def get_action(session: Session, runbook_id: str, action_id: str) -> ActionSpec | None:
    """The stored (validated at import) action ``action_id`` of runbook ``runbook_id``."""
    rb = get_runbook(session, runbook_id)
    raw = next((a for a in rb.actions if a.get("id") == action_id), None) if rb else None
    return ActionSpec.model_validate(raw) if raw is not None else None


def action_ids(session: Session) -> set[str]:
    """The id of every action of every stored runbook (what ``policy.yml``'s ``actions`` may name)."""
    return {str(a.get("id")) for rb in all_runbooks(session) for a in rb.actions if a.get("id")}
