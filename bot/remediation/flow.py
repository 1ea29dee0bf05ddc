"""The remediation use cases the incident service exposes: request, decide, run, expire, freeze.

Database work happens in short transactions; the executor runs between the claim (approved → running,
committed) and the result (running → succeeded/failed). Every chat message is an outbox row (bot/kernel/outbox.py)
queued in the transaction of the state change it tells about: the approval prompt with the request, its
re-render with each decision, expiry and result (coalesced per request), the result's thread reply with the
result. So a Slack outage of any length never blocks or undoes a decision, and nothing is lost: the messages
arrive, in order per incident, once Slack answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel import audit, metrics
from bot.kernel.db import transaction
from bot.kernel.db_types import utcnow
from bot.kernel.errors import DomainError, InvalidState, NotFound
from bot.kernel.models import Incident, RemediationRequest, Suggestion, get_incident
from bot.kernel.outbox import Kind, Outbox, OutboxMessage
from bot.remediation import approvals
from bot.remediation.actions import ActionSpec
from bot.remediation.base import ActionContext, ExecutionResult, Preview
from bot.remediation.chat import ApprovalChat, ApprovalView
from bot.remediation.directory import GroupCache, resolve_approvers
from bot.remediation.guardrails import Verdict, consider
from bot.remediation.policy import MODEL_OWNER, Policy, Rule
from bot.remediation.registry import ExecutorRegistry
from bot.remediation.runbook_store import get_action, get_runbook

log = logging.getLogger(__name__)


class Remediation:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        executors: ExecutorRegistry,
        policy: Policy,
        chat: ApprovalChat,
        model_owners: dict[str, list[str]],
        groups: GroupCache,
        outbox: Outbox,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self.executors = executors
        self.policy = policy
        self._chat = chat
        self._model_owners = model_owners
        self._groups = groups

    def rule(self, action: ActionSpec) -> Rule:
        return self.policy.rule_for(
            action_id=action.id, action_type=action.type, runbook_approvers=action.approvers
        )

    # ---- chat, through the outbox -------------------------------------------------------------------
    def _queue_prompt(self, session: Session, req: RemediationRequest) -> bool:
        """Queue the request's prompt once (unique dedup key); False if it was already queued or posted."""
        if approvals.is_posted(req):
            return False
        return (
            self._outbox.enqueue(
                session,
                kind=Kind.POST_APPROVAL,
                incident_id=req.incident_id,
                payload={"request_id": req.id},
                dedup_key=f"approval_prompt:{req.id}",
            )
            is not None
        )

    def _queue_refresh(self, session: Session, req: RemediationRequest, actor: str | None = None) -> None:
        """Queue a re-render of the prompt (coalesced per request; rendered from the database at delivery)."""
        self._outbox.enqueue(
            session,
            kind=Kind.UPDATE_APPROVAL,
            incident_id=req.incident_id,
            coalesce_key=f"approval:{req.id}:prompt",
            payload={"request_id": req.id, **({"actor": actor} if actor else {})},
        )

    def deliver_prompt(self, msg: OutboxMessage) -> Callable[[Session], None] | None:
        request_id = int((msg.payload or {})["request_id"])
        with self._sessions() as session:
            req = session.get(RemediationRequest, request_id)
            if req is None or approvals.is_posted(req):
                return None
        view = self.view(request_id)  # the dry run (e.g. MLflow reads) happens here, outside any transaction
        self._outbox.renew(msg)
        ts = self._chat.post_approval_prompt(view)

        pin = view.preview.pin if view.preview.error is None else None

        def record(session: Session) -> None:  # same transaction as marking the outbox row done
            row = session.get(RemediationRequest, request_id)
            if row is None:
                return
            row.slack_ts = ts
            if pin is not None:  # run exactly what this prompt shows (e.g. MLflow: v3 → v2, refuse if moved)
                row.action = {**row.action, "params": pin}
                audit.record(
                    session,
                    event="remediation.pinned",
                    actor="bot",
                    incident_id=row.incident_id,
                    request_id=row.id,
                    params=pin,
                )

        return record

    def deliver_prompt_update(self, msg: OutboxMessage) -> None:
        payload = msg.payload or {}
        try:
            view = self.view(int(payload["request_id"]))
        except NotFound:
            return None
        if not approvals.is_posted(view.request):
            return None  # the prompt never reached Slack (its post failed for good): nothing to update
        actor = str(payload.get("actor") or (view.approved_by[-1] if view.approved_by else "someone"))
        self._chat.update_approval(view, actor=actor)
        return None

    # ---- request ---------------------------------------------------------------------------------
    def _offered(self, session: Session, incident: Incident, action_id: str) -> tuple[str, ActionSpec, Rule]:
        """The runbook action bound to this incident (parameters rendered from it, stored on the request),
        decided again from the stored verdict and the database, never from the click."""
        if incident.runbook_id is None:
            raise NotFound(f"Action '{action_id}' is not offered for incident #{incident.id}.")
        action = get_action(session, incident.runbook_id, action_id)
        if action is None:
            raise NotFound(f"Action '{action_id}' is not offered for incident #{incident.id}.")
        shown = _runbook_suggestion(session, incident)
        verdict = Verdict.from_features(shown.features if shown is not None else None)
        rule = self.rule(action)
        bound = consider(action, incident=incident, verdict=verdict, executors=self.executors, rule=rule)
        if isinstance(bound, str):
            if not (verdict.specific or verdict.by_service):
                raise InvalidState(
                    f"Runbook '{incident.runbook_id}' matched incident #{incident.id} too weakly "
                    "for its actions to be offered; read it and act by hand."
                )
            raise InvalidState(f"'{action.title}' is not offered for incident #{incident.id}: {bound}.")
        return incident.runbook_id, bound, rule

    def request(self, *, incident_id: int, action_id: str, user_id: str) -> int:
        try:
            with transaction(self._sessions) as session:
                incident = get_incident(session, incident_id)
                existing = approvals.open_request(session, incident_id=incident_id, action_id=action_id)
                if existing is None:
                    runbook_id, action, rule = self._offered(session, incident, action_id)
                    approvers = resolve_approvers(
                        rule.approvers,
                        model=incident.model_name,
                        model_owners=self._model_owners,
                        groups=self._groups,
                    )
                    req = approvals.create_request(
                        session,
                        incident=incident,
                        runbook_id=runbook_id,
                        action=action,
                        rule=rule,
                        approvers=approvers,
                        user_id=user_id,
                    )
                else:
                    req = existing
                queued = self._queue_prompt(session, req)  # the prompt commits with the request
        except IntegrityError:  # a concurrent click inserted the open request first: it queued the prompt
            with self._sessions() as session:
                winner = approvals.open_request(session, incident_id=incident_id, action_id=action_id)
            if winner is None:
                raise
            req, queued = winner, False
        if not queued:
            raise InvalidState(
                f"'{req.action_title}' is already requested (request #{req.id}, {req.status})."
            )
        self._outbox.wake()
        return req.id

    # ---- what approvers see ----------------------------------------------------------------------
    def context(self, session: Session, req: RemediationRequest) -> ActionContext:
        incident = get_incident(session, req.incident_id)
        return ActionContext(
            request_id=req.id,
            incident_id=incident.id,
            incident_title=incident.title,
            service=incident.service,
            model=incident.model_name,
            requested_by=req.requested_by,
            approved_by=tuple(approvals.approvals_of(session, req.id)),
            idempotency_key=f"incident-bot-request-{req.id}",
            action_id=req.action_id,
        )

    def view(self, request_id: int) -> ApprovalView:
        with self._sessions() as session:
            req = session.get(RemediationRequest, request_id)
            if req is None:
                raise NotFound(f"Request #{request_id} does not exist.")
            incident = get_incident(session, req.incident_id)
            ctx = self.context(session, req)
            action = ActionSpec.model_validate(req.action)
            executor = self.executors.get(req.action_type)
            rb = get_runbook(session, req.runbook_id)
            list(incident.alerts)  # loaded for the renderer
        if executor is None:
            preview = Preview(
                executor=req.action_type, target="?", error="no executor configured for this type"
            )
        else:
            try:
                preview = executor.preview(action.typed_params(self.executors), ctx)
            except Exception as exc:  # a dry run that cannot read its target is shown, not hidden
                log.exception("preview of request #%s failed", request_id)
                preview = Preview(executor=req.action_type, target="?", error=f"{type(exc).__name__}: {exc}")
        step = next((s for s in (rb.steps if rb else []) if action.title.lower()[:20] in s.lower()), None)
        why = f"runbook “{rb.title if rb else req.runbook_id}”" + (f", step: {step}" if step else "")
        return ApprovalView(req, incident, preview, list(ctx.approved_by), req.approvals_required, why)

    # ---- decisions and runs ----------------------------------------------------------------------
    def decide(self, *, request_id: int, user_id: str, approve: bool) -> RemediationRequest:
        with transaction(
            self._sessions
        ) as session:  # a click after the TTL expires it (committed), then refuses
            due = session.get(RemediationRequest, request_id)
            if due is not None and approvals.expire_if_due(session, due, utcnow()):
                self._queue_refresh(session, due, user_id)  # take the buttons off and say why
        try:
            with transaction(self._sessions) as session:
                req = session.get(RemediationRequest, request_id)
                limit = self.rule(ActionSpec.model_validate(req.action)).rate_limit_per_hour if req else 0
                req, became = approvals.decide(
                    session,
                    request_id=request_id,
                    user_id=user_id,
                    approve=approve,
                    rate_limit_per_hour=limit,
                )
                self._queue_refresh(session, req, user_id)
        except DomainError as exc:
            self._audit_denied(request_id, user_id, str(exc))
            self._outbox.wake()
            raise
        self._outbox.wake()
        if became:
            req = self.run(request_id) or req
        return req

    def run(self, request_id: int) -> RemediationRequest | None:
        """Claim (approved → running) and execute once; the result is recorded and told in the thread."""
        with transaction(self._sessions) as session:
            req = approvals.claim(session, request_id=request_id)
            if req is None:
                return None
            ctx = self.context(session, req)
            action = ActionSpec.model_validate(req.action)
        executor = self.executors[req.action_type]
        try:
            result = executor.run(action.typed_params(self.executors), ctx)
        except Exception as exc:  # an executor bug must still end the request, never leave it running
            log.exception("executor %s raised for request #%s", req.action_type, request_id)
            result = ExecutionResult(False, None, 0.0, error=f"{type(exc).__name__}: {exc}")
        outcome = "succeeded" if result.ok else f"FAILED ({result.error})"
        # What changed, in the executor's words (e.g. "fraud-model@champion: v3 (...) → v2 (...)");
        # escaped when delivered, like every thread reply.
        what = " ".join(str(result.response_excerpt or "").split())[:300] if result.ok else ""
        with transaction(self._sessions) as session:
            req = approvals.record_result(session, request_id=request_id, result=result, actor="executor")
            self._queue_refresh(session, req)  # the prompt shows the outcome
            self._outbox.enqueue(
                session,
                kind=Kind.THREAD_REPLY,
                incident_id=req.incident_id,
                payload={
                    "text": f"Action '{req.action_title}' {outcome} in {result.duration_ms:.0f} ms "
                    f"(request #{req.id}, approved by {', '.join(ctx.approved_by)})."
                    + (f" {what}" if what else "")
                },
            )
        metrics.ACTION_RUNS.labels(outcome="succeeded" if result.ok else "failed").inc()
        self._outbox.wake()
        return req

    def _audit_denied(self, request_id: int, user_id: str, reason: str) -> None:
        with transaction(self._sessions) as session:
            req = session.get(RemediationRequest, request_id)
            audit.record(
                session,
                event="remediation.denied",
                actor=user_id,
                incident_id=req.incident_id if req else None,
                request_id=req.id if req else None,
                reason=reason,
            )

    # ---- scheduler and kill switch ---------------------------------------------------------------
    def expire_due(self, now: datetime | None = None) -> list[int]:
        """Scheduler job: expire pending requests past their TTL and take the buttons off their prompts."""
        now = now or utcnow()
        expired: list[int] = []
        with self._sessions() as session:
            due = approvals.due_for_expiry(session, now)
        for request_id in due:
            with transaction(self._sessions) as session:
                req = session.get(RemediationRequest, request_id, with_for_update=True)
                if req is not None and approvals.expire_if_due(session, req, now):
                    self._queue_refresh(session, req, "scheduler")
                    expired.append(request_id)
        if expired:
            self._outbox.wake()
        return expired

    def is_any_approver(self, user_id: str) -> bool:
        """Anyone named as an approver anywhere in the policy (groups and model owners expanded)."""
        entries = self.policy.approver_entries()
        owners = {u for us in self._model_owners.values() for u in us}
        if MODEL_OWNER in entries and user_id in owners:
            return True
        return user_id in resolve_approvers(
            sorted(entries - {MODEL_OWNER}), model=None, model_owners={}, groups=self._groups
        )

    def set_frozen(self, *, frozen: bool, actor: str, reason: str | None = None) -> bool:
        with transaction(self._sessions) as session:
            return approvals.set_frozen(session, frozen=frozen, actor=actor, reason=reason)

    def frozen(self) -> bool:
        with self._sessions() as session:
            return approvals.is_frozen(session)


def _runbook_suggestion(session: Session, incident: Incident) -> Suggestion | None:
    return session.scalars(
        select(Suggestion).where(
            Suggestion.incident_id == incident.id,
            Suggestion.target_kind == "runbook",
            Suggestion.target_id == incident.runbook_id,
        )
    ).first()
