"""An incident's chat message, through the outbox: advice first, then the post that only renders it.

Everything is queued in the transaction of the state change that causes it (bot/kernel/outbox.py) and
delivered later by any replica's workers, in order per incident:

- ``advise`` computes the incident's suggestions (similar past incidents, the best runbook and the actions it
  may offer) and stores them; when the incident is already posted (a 👎 asked for new advice) it queues an
  update of the message. No chat call, so Slack being down never holds advice back.
- ``post_incident`` renders the stored advice and posts; the ts is recorded with the row marked done. The
  post carries metadata (its outbox row and incident); an attempt after one whose outcome is unknown (a
  timeout, a worker killed mid-call) first looks for that message in the channel and adopts its ts.
- ``update_incident`` re-renders the stored advice (coalesced per incident); ``thread_reply`` posts a line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.advice.advisor import Advisor
from bot.advice.chat import IncidentChat, IncidentView, PostMark
from bot.kernel import audit
from bot.kernel.db import transaction
from bot.kernel.models import Incident, get_incident
from bot.kernel.outbox import Finalizer, Handler, Kind, Outbox, OutboxMessage, Status
from bot.triage.policy import Reopened


class Followup(Protocol):
    """More messages about an incident, queued after its own (e.g. the alert's graph, bot/reports/alert_graph.py):
    given by the composition root, so this module imports none of them."""

    def queue_new(self, session: Session, incident_id: int) -> OutboxMessage | None: ...

    def queue_update(self, session: Session, incident_id: int) -> OutboxMessage | None: ...


log = logging.getLogger(__name__)
LOOKBACK_MARGIN = timedelta(minutes=2)  # clock skew between our database and Slack


class IncidentMessages:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        outbox: Outbox,
        advisor: Advisor,
        chat: IncidentChat,
        oncall_mention: Sequence[str] = (),
        followups: Sequence[Followup] = (),
    ) -> None:
        self._followups = list(followups)
        self._sessions = sessions
        self._outbox = outbox
        self._advisor = advisor
        self._chat = chat
        self._oncall_mention = list(oncall_mention)

    def handlers(self) -> dict[Kind, Handler]:
        """The outbox handlers, registered by the composition root."""
        return {
            Kind.ADVISE: self.deliver_advice,
            Kind.POST_INCIDENT: self.deliver_post,
            Kind.UPDATE_INCIDENT: self.deliver_update,
            Kind.THREAD_REPLY: self.deliver_thread_reply,
        }

    def prepare_advice(self, msgs: list[OutboxMessage]) -> None:
        """Several ``advise`` rows claimed together (a burst of new incidents): their query embeddings in one
        model call (``Outbox.register_prepare``); each row's delivery then finds its vector ready."""
        ids = [m.incident_id for m in msgs if m.incident_id is not None]
        with self._sessions() as session:
            self._advisor.prepare(session, [get_incident(session, i) for i in ids])

    # ---- queued in the caller's transaction ------------------------------------------------------------
    def queue_new(self, session: Session, incident_id: int) -> list[OutboxMessage | None]:
        """A new incident: its advice, then its first post (each once: unique dedup keys), then follow-ups."""
        return [
            self._outbox.enqueue(
                session, kind=Kind.ADVISE, incident_id=incident_id, dedup_key=f"advise:{incident_id}"
            ),
            self.queue_post(session, incident_id),
            *(f.queue_new(session, incident_id) for f in self._followups),
        ]

    def queue_post(self, session: Session, incident_id: int) -> OutboxMessage | None:
        return self._outbox.enqueue(
            session,
            kind=Kind.POST_INCIDENT,
            incident_id=incident_id,
            dedup_key=f"post_incident:{incident_id}",
        )

    def queue_update(self, session: Session, incident_id: int) -> OutboxMessage | None:
        row = self._outbox.enqueue(
            session,
            kind=Kind.UPDATE_INCIDENT,
            incident_id=incident_id,
            coalesce_key=f"incident:{incident_id}:message",
        )
        for followup in self._followups:
            followup.queue_update(session, incident_id)
        return row

    def queue_advice(self, session: Session, incident_id: int) -> OutboxMessage | None:
        """Advise again (e.g. after a 👎 excluded a match; several clicks coalesce into one search); the job
        updates the message once it is done."""
        return self._outbox.enqueue(
            session, kind=Kind.ADVISE, incident_id=incident_id, coalesce_key=f"incident:{incident_id}:advice"
        )

    def queue_reopen_notice(self, session: Session, reopened: Reopened) -> OutboxMessage | None:
        """A person's Resolve undone by the source: said in the thread, to the resolver (and the on-call),
        with why. The message update alone (re-opened in place) is too quiet: nobody is notified of an edit."""
        text = (
            f":leftwards_arrow_with_hook: Re-opened #{reopened.incident_id}: it was resolved "
            f"{reopened.minutes} min ago, but {reopened.source} still reports it firing (after the "
            "re-open grace). Check whether the fix held, or silence the alert at its source."
        )
        mentions = [m for m in [reopened.resolved_by, *self._oncall_mention] if m]
        return self._outbox.enqueue(
            session,
            kind=Kind.THREAD_REPLY,
            incident_id=reopened.incident_id,
            payload={"text": text, "mentions": list(dict.fromkeys(mentions))},
        )

    # ---- outbox handlers ----------------------------------------------------------------------------------
    def deliver_advice(self, msg: OutboxMessage) -> None:
        with transaction(self._sessions) as session:
            incident = get_incident(session, _incident_id(msg))
            self._advisor.advise(session, incident)
            if incident.slack_ts is not None:
                self.queue_update(session, incident.id)
        self._outbox.wake()
        return None

    def deliver_post(self, msg: OutboxMessage) -> Finalizer | None:
        incident_id = _incident_id(msg)
        mark = PostMark(outbox_id=msg.id, incident_id=incident_id)
        # A second attempt follows one whose outcome is unknown: a Slack call that timed out (Slack may
        # have posted and answered late) or a worker that died mid-call (its lease expired and this worker
        # took the row). The message may be in the channel already: look for it by its metadata first.
        unsure = msg.attempts > 1
        with transaction(self._sessions) as session:
            incident = get_incident(session, incident_id)
            if incident.slack_ts is not None:
                return None  # already posted
            # An incident that opened and resolved before its post went out (a short blip, or both during
            # a Slack outage) is still posted, showing it resolved: the channel is the on-call's record,
            # and nothing the bot opened may vanish from it. The scheduler's safety net (retry_unposted)
            # stays with open incidents, so an upgrade does not post years of old ones.
            view = self._view(session, incident)
            known_channel = _known_channel(session) if unsure else None
        found = None
        if unsure:
            since = msg.created_at - LOOKBACK_MARGIN  # no attempt can predate the row
            found = self._chat.find_post(mark, since=since, channel=known_channel)
        if found is not None:
            channel, ts = found
            log.info("incident %s: adopted its earlier post %s (outbox #%s)", incident_id, ts, msg.id)
        else:
            self._outbox.renew(msg)  # the render may have been slow: never post on an expired claim
            channel, ts = self._chat.post_incident(view, mark=mark)

        def record(session: Session) -> None:  # same transaction as marking the outbox row done
            row = get_incident(session, incident_id)
            row.slack_channel, row.slack_ts = channel, ts
            audit.record(
                session,
                event="incident.posted",
                actor="bot",
                incident_id=row.id,
                channel=channel,
                **({"adopted": True} if found is not None else {}),
            )

        return record

    def deliver_update(self, msg: OutboxMessage) -> None:
        with transaction(self._sessions) as session:
            incident = get_incident(session, _incident_id(msg))
            if incident.slack_ts is None:
                return None  # not posted yet: the post, when it goes out, renders the latest state
            legacy_advise = bool(
                (msg.payload or {}).get("advise")
            )  # a 👎 queued by a version before `advise`
            view = (
                self._advisor.advise(session, incident)
                if legacy_advise
                else self._advisor.stored_view(session, incident)
            )
        self._chat.update_incident(view)
        return None

    def _view(self, session: Session, incident: Incident) -> IncidentView:
        """The stored advice; computed here only when no `advise` job finished for the incident: its post was
        queued by a version before that job existed, or an older replica (no handler) failed the job during a
        rolling upgrade. Either way the first post still carries its advice."""
        advised = session.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.incident_id == incident.id,
                OutboxMessage.kind == Kind.ADVISE,
                OutboxMessage.status == Status.DONE,
            )
            .limit(1)
        )
        return (
            self._advisor.stored_view(session, incident)
            if advised
            else self._advisor.advise(session, incident)
        )

    def deliver_thread_reply(self, msg: OutboxMessage) -> None:
        with self._sessions() as session:
            incident = get_incident(session, _incident_id(msg))
        if incident.slack_ts is not None:
            payload = msg.payload or {}
            mentions = [str(m) for m in payload.get("mentions") or []]
            self._chat.post_in_thread(incident, str(payload.get("text", "")), mentions=mentions)
        return None


def _known_channel(session: Session) -> str | None:
    """The channel id of the latest posted incident (Slack's answer), for a history search when the
    configured channel is a name."""
    return session.scalar(
        select(Incident.slack_channel)
        .where(Incident.slack_channel.is_not(None))
        .order_by(Incident.id.desc())
        .limit(1)
    )


def _incident_id(msg: OutboxMessage) -> int:
    if msg.incident_id is None:
        raise ValueError(f"outbox #{msg.id} ({msg.kind}) has no incident")
    return msg.incident_id
