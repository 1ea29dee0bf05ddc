"""The remediation use cases the incident service exposes: request, decide, run, expire, freeze.

Database work happens in short transactions; the executor runs between the claim (approved → running,
committed) and the result (running → succeeded/failed). Every chat message is an outbox row (bot/kernel/outbox.py)
queued in the transaction of the state change it tells about: the approval prompt with the request, its
re-render with each decision, expiry and result (coalesced per request), the result's thread reply with the
result. So a Slack outage of any length never blocks or undoes a decision, and nothing is lost: the messages
arrive, in order per incident, once Slack answers again.

Policy at the moment of decision: every approval and every run reads the policy as it is then
(``PolicySource``: policy.yml is re-read when its mtime changed); approvers, approvals required, scope,
freeze and rate limit are checked against it, and a request it now forbids is refused with the reason.
A decision holds one lock per (service, action type) (``bot/kernel/locks.py`` ``locked``), so a rate limit
counts every run approved before it, on any thread or replica.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel import audit, metrics
from bot.kernel.db import transaction
from bot.kernel.db_types import utcnow
from bot.kernel.errors import DomainError, InvalidState, NotFound
from bot.kernel.locks import locked
from bot.kernel.models import Incident, RemediationRequest, RequestStatus, Suggestion, get_incident
from bot.kernel.outbox import Kind, Outbox, OutboxMessage
from bot.remediation import approvals, killswitch
from bot.remediation.actions import ActionSpec
from bot.remediation.base import ActionContext, ExecutionResult, Preview
from bot.remediation.chat import ApprovalChat, ApprovalView
from bot.remediation.directory import GroupCache, resolve_approvers
from bot.remediation.guardrails import Verdict, consider, out_of_scope
from bot.remediation.policy import MODEL_OWNER, ROLES, Policy, PolicyError, PolicySource, Rule
from bot.remediation.registry import ExecutorRegistry
from bot.remediation.runbook_store import get_action, get_runbook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judgement:
    """A request judged against the policy as it is now (computed outside any transaction: group lookups
    may call Slack)."""

    service: str | None
    action_type: str
    rule: Rule | None  # None: policy.yml changed and does not validate (``policy_error``)
    approvers: list[str] | None
    forbidden: str | None  # why the policy as it is now forbids the request, or None
    policy_error: str | None = None


class Remediation:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        executors: ExecutorRegistry,
        policy: Policy | PolicySource,
        chat: ApprovalChat,
        model_owners: dict[str, list[str]],
        groups: GroupCache,
        outbox: Outbox,
        service_owners: Callable[[str | None], list[str]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._service_owners = service_owners  # `service-owner`: the catalog's owner group of a service
        self._outbox = outbox
        self.executors = executors
        self._policy = policy if isinstance(policy, PolicySource) else PolicySource.fixed(policy)
        self._chat = chat
        self._model_owners = model_owners
        self._groups = groups

    @property
    def policy(self) -> Policy:
        """The last policy that validated (offers and reads; decisions use ``_policy_now``)."""
        return self._policy.last_good()

    def _policy_now(self) -> Policy:
        try:
            return self._policy.current()
        except PolicyError as exc:
            raise InvalidState(str(exc)) from None

    def rule(self, action: ActionSpec, policy: Policy | None = None) -> Rule:
        return (policy if policy is not None else self.policy).rule_for(
            action_id=action.id, action_type=action.type, runbook_approvers=action.approvers
        )

    def judge(self, request_id: int) -> Judgement:
        """The request against the policy as it is now: its rule, its approvers, whether it is still allowed."""
        with self._sessions() as session:
            req = session.get(RemediationRequest, request_id)
            if req is None:
                raise NotFound(f"Request #{request_id} does not exist.")
            incident = get_incident(session, req.incident_id)
            list(incident.alerts)  # the environment label is read from them
            action = ActionSpec.model_validate(req.action)
        try:
            policy = self._policy.current()
        except PolicyError as exc:
            return Judgement(incident.service, req.action_type, None, None, None, policy_error=str(exc))
        rule = self.rule(action, policy)
        approvers = self._approvers(rule.approvers, incident)
        forbidden = out_of_scope(action, incident=incident, executors=self.executors, rule=rule)
        return Judgement(incident.service, req.action_type, rule, approvers, forbidden)

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
        rule = self.rule(action, self._policy_now())
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
                    approvers = self._approvers(rule.approvers, incident)
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
            idempotency_key=req.uid or f"incident-bot-request-{req.id}",  # uid: every row since "decide"
            action_id=req.action_id,
        )

    def view(self, request_id: int, *, dry_run: bool = True) -> ApprovalView:
        """What the prompt shows, from the database and the policy as it is now; ``dry_run`` False skips the
        executor's preview (a result needs none)."""
        with self._sessions() as session:
            req = session.get(RemediationRequest, request_id)
            if req is None:
                raise NotFound(f"Request #{request_id} does not exist.")
            incident = get_incident(session, req.incident_id)
            ctx = self.context(session, req)
            action = ActionSpec.model_validate(req.action)
            executor = self.executors.get(req.action_type)
            rb = get_runbook(session, req.runbook_id)
            frozen = killswitch.is_frozen(session)
            list(incident.alerts)  # loaded for the renderer
        notes: list[str] = []
        approvers = list(req.approvers)
        if req.status == RequestStatus.PENDING.value:  # whom the policy names now, and why a name is empty
            approvers = self._approvers(self.rule(action).approvers, incident, problems=notes)

        def made(preview: Preview, why: str) -> ApprovalView:
            return ApprovalView(
                req,
                incident,
                preview,
                list(ctx.approved_by),
                req.approvals_required,
                why,
                approvers=approvers,
                approver_notes=notes,
                frozen=frozen,
            )

        if not dry_run:
            return made(Preview(executor=req.action_type, target=""), "")
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
        return made(preview, why)

    # ---- decisions and runs ----------------------------------------------------------------------
    def decide(self, *, request_id: int, user_id: str, approve: bool) -> RemediationRequest:
        with transaction(
            self._sessions
        ) as session:  # a click after the TTL expires it (committed), then refuses
            due = session.get(RemediationRequest, request_id)
            if due is not None and approvals.expire_if_due(session, due, utcnow()):
                self._queue_refresh(session, due, user_id)  # take the buttons off and say why
        refused = False
        try:
            now = self.judge(request_id)  # the policy as it is at this click
            if approve and now.policy_error:
                raise InvalidState(f"{now.policy_error}.")
            with locked(self._sessions, [approvals.decision_lock(now.service, now.action_type)]) as session:
                if approve and now.forbidden:  # the policy as it is now forbids the request itself
                    refused = approvals.refuse(
                        session,
                        request_id=request_id,
                        reason=f"the policy as it is now forbids it: {now.forbidden}",
                        actor=user_id,
                    )
                if refused:
                    req = session.get(RemediationRequest, request_id, populate_existing=True)
                    assert req is not None
                    became = False
                else:
                    req, became = approvals.decide(
                        session,
                        request_id=request_id,
                        user_id=user_id,
                        approve=approve,
                        rate_limit_per_hour=now.rule.rate_limit_per_hour if now.rule else 0,
                        approvers=now.approvers,
                        approvals_required=now.rule.approvals_required if now.rule else None,
                    )
                self._queue_refresh(session, req, user_id)
            if refused:
                raise InvalidState(
                    f"Request #{request_id} refused: the policy as it is now forbids it ({now.forbidden})."
                )
        except DomainError as exc:
            if not refused:  # a refusal is audited as its transition (remediation.refused)
                self._audit_denied(request_id, user_id, str(exc))
            self._outbox.wake()
            raise
        self._outbox.wake()
        if became:
            req = self.run(request_id) or req
        return req

    def run(self, request_id: int) -> RemediationRequest | None:
        """Claim (approved → running) and execute once; the result is recorded and told in the thread.
        The policy is read again first: a request it now forbids is refused, not run."""
        now = self.judge(request_id)
        forbidden = now.forbidden or now.policy_error
        with transaction(self._sessions) as session:
            req = approvals.claim(
                session,
                request_id=request_id,
                forbidden=f"the policy as it is now forbids it: {forbidden}" if forbidden else None,
            )
            if req is None:
                row = session.get(RemediationRequest, request_id)
                if row is not None and row.status in (RequestStatus.REFUSED, RequestStatus.CANCELLED):
                    self._queue_refresh(session, row)  # the prompt says why it did not run
                return None
            ctx = self.context(session, req)
            action = ActionSpec.model_validate(req.action)
        executor = self.executors[req.action_type]
        try:
            result = executor.run(action.typed_params(self.executors), ctx)
        except Exception as exc:  # an executor bug must still end the request, never leave it running
            log.exception("executor %s raised for request #%s", req.action_type, request_id)
            result = ExecutionResult(False, None, 0.0, error=f"{type(exc).__name__}: {exc}")
        with transaction(self._sessions) as session:
            req = approvals.record_result(session, request_id=request_id, result=result, actor="executor")
            self._queue_refresh(session, req)  # the prompt shows the outcome
            self._outbox.enqueue(  # rendered at delivery, naming the request and every approver
                session,
                kind=Kind.APPROVAL_RESULT,
                incident_id=req.incident_id,
                payload={"request_id": req.id},
                dedup_key=f"approval_result:{req.id}",
            )
        outcome = "succeeded" if result.ok else "refused" if result.refused else "failed"
        metrics.ACTION_RUNS.labels(outcome=outcome).inc()
        log.info(
            "action %s (%s) of request #%d %s in %.0f ms%s",
            req.action_id, req.action_type, req.id, outcome, result.duration_ms,
            "" if result.ok else f": {result.error}",
            extra={"incident_id": req.incident_id},
        )  # fmt: skip
        self._outbox.wake()
        return req

    def deliver_result(self, msg: OutboxMessage) -> None:
        try:
            view = self.view(int((msg.payload or {})["request_id"]), dry_run=False)
        except NotFound:
            return None
        if view.incident.slack_ts is not None:
            self._chat.post_approval_result(view)
        return None

    def deliver_freeze_notice(self, msg: OutboxMessage) -> None:
        p = msg.payload or {}
        self._chat.post_freeze_notice(
            frozen=bool(p.get("frozen")),
            actor=str(p.get("actor") or "someone"),
            reason=str(p["reason"]) if p.get("reason") else None,
            pending=int(p.get("pending") or 0),
        )

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
        """Anyone named as an approver anywhere in the policy (groups and model owners expanded). The
        ``service-owner`` role does not count here: it names people only for an incident's service."""
        entries = self.policy.approver_entries()
        owners = {u for us in self._model_owners.values() for u in us}
        if MODEL_OWNER in entries and user_id in owners:
            return True
        return user_id in resolve_approvers(
            sorted(entries - ROLES), model=None, model_owners={}, groups=self._groups
        )

    def _approvers(
        self, entries: tuple[str, ...] | list[str], incident: Incident, *, problems: list[str] | None = None
    ) -> list[str]:
        return resolve_approvers(
            entries,
            model=incident.model_name,
            model_owners=self._model_owners,
            groups=self._groups,
            problems=problems,
            service=incident.service,
            service_owners=self._service_owners,
        )

    def set_frozen(self, *, frozen: bool, actor: str, reason: str | None = None) -> bool:
        with transaction(self._sessions) as session:
            changed = killswitch.freeze(
                session, frozen=frozen, actor=actor, reason=reason, enqueue=self._outbox.enqueue
            )
        self._outbox.wake()
        return changed

    def frozen(self) -> bool:
        with self._sessions() as session:
            return killswitch.is_frozen(session)


def _runbook_suggestion(session: Session, incident: Incident) -> Suggestion | None:
    return session.scalars(
        select(Suggestion).where(
            Suggestion.incident_id == incident.id,
            Suggestion.target_kind == "runbook",
            Suggestion.target_id == incident.runbook_id,
        )
    ).first()
