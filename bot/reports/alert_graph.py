"""The alert's own graph in the incident thread (``PROMETHEUS_URL``): the expression of the Prometheus rule that
fired (its generatorURL's ``g0.expr``), queried over the incident's window (30 min before it started → now,
or its resolution), drawn with the rule's threshold and the incident's changes (deploys, promotions) as
vertical markers, and uploaded into the thread.

Through the outbox (``Kind.ALERT_GRAPH``): queued with the incident's first post (once: a dedup key), so it
follows the post and never delays it, and once more when the incident resolves (the whole incident, unless
the first graph already covered the resolution). A Prometheus that is down, a query that fails or returns
nothing is one line in the thread, never a retry loop: the graph row must not hold the incident's later
messages, which are delivered in order behind it. Slack errors are retried like any chat call.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import matplotlib

matplotlib.use("Agg")  # before pyplot-free Figure use: rendering happens in a server, never on a display
from matplotlib import dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bot.intake.changes import changes_between  # noqa: E402
from bot.kernel import audit  # noqa: E402
from bot.kernel.db_types import utcnow  # noqa: E402
from bot.kernel.models import AlertRecord, AuditEvent, Incident, IncidentStatus, get_incident  # noqa: E402
from bot.kernel.outbox import Finalizer, Kind, Outbox, OutboxMessage  # noqa: E402
from bot.reports.promql import (  # noqa: E402
    Prometheus,
    PrometheusError,
    Series,
    Threshold,
    expr_from_generator_url,
    split_threshold,
    step_for,
)

log = logging.getLogger(__name__)

BEFORE = timedelta(minutes=30)  # the graph starts this long before the incident
MAX_SERIES = 8  # drawn; the rest are counted in the corner
MAX_MARKERS = 10
EVENT = "incident.graph_posted"
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


class GraphChat(Protocol):
    """What the graph needs from chat (handlers/slack/notifier.py implements it)."""

    def post_in_thread(self, incident: Incident, text: str) -> None: ...

    def upload_in_thread(
        self, incident: Incident, *, content: bytes, filename: str, title: str, alt_text: str
    ) -> None: ...


@dataclass(frozen=True)
class Marker:
    at: datetime
    label: str  # "deploy checkout v1.42"


@dataclass(frozen=True)
class GraphSpec:
    incident_id: int
    alert_name: str
    expr: str  # as the rule states it
    plotted: str  # the expression queried: the rule's left side when it states a threshold
    threshold: Threshold | None
    start: datetime
    end: datetime
    incident_start: datetime
    resolved_at: datetime | None
    markers: list[Marker] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"#{self.incident_id} {self.alert_name}: {self.expr}"

    def alt_text(self) -> str:
        parts = [f"{self.plotted} from {self.start:%H:%M} to {self.end:%H:%M} UTC"]
        if self.threshold is not None:
            parts.append(f"threshold {self.threshold.text}")
        parts.append(f"incident started {self.incident_start:%H:%M}")
        if self.resolved_at is not None:
            parts.append(f"resolved {self.resolved_at:%H:%M}")
        parts += [f"{m.label} at {m.at:%H:%M}" for m in self.markers]
        return "; ".join(parts)[:1000]  # Slack's limit for alt text


def graph_source(alerts: Sequence[AlertRecord]) -> tuple[AlertRecord, str] | None:
    """The incident's first alert whose link is a Prometheus generatorURL, and its expression."""
    for alert in sorted(alerts, key=lambda a: (a.first_seen_at, a.id)):
        expr = expr_from_generator_url(alert.url)
        if expr:
            return alert, expr
    return None


def _aware(t: datetime | None) -> datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=UTC)


def _mpl(text: str) -> str:
    """Untrusted text as matplotlib draws it literally (``$`` would start mathtext and can fail the render)."""
    return text.replace("$", r"\$")


def _legend(series: Series, keys: list[str]) -> str:
    text = ", ".join(f'{k}="{series.labels[k]}"' for k in keys if k in series.labels)
    text = text or series.labels.get("__name__") or "value"
    return _mpl(text[:80].lstrip("_") or "value")  # a leading "_" would hide it from the legend


def _x(t: datetime) -> float:
    """A datetime as matplotlib's date number (days since its epoch), which the date formatter reads."""
    return float(mdates.date2num(t))  # type: ignore[no-untyped-call]


def render_png(spec: GraphSpec, series: Sequence[Series]) -> bytes:
    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")  # no pyplot: no global figure registry
    ax = fig.subplots()
    drawn = sorted((s for s in series if s.points), key=lambda s: -max(v for _, v in s.points))[:MAX_SERIES]
    names = sorted({k for s in drawn for k in s.labels if k != "__name__"})
    varying = [k for k in names if len({s.labels.get(k) for s in drawn}) > 1] or names[:3]
    for n, s in enumerate(drawn):
        ax.plot(
            [_x(t) for t, _ in s.points],
            [v for _, v in s.points],
            lw=1.4,
            color=COLOURS[n % len(COLOURS)],
            label=_legend(s, varying),
        )
    if spec.threshold is not None:
        ax.axhline(
            spec.threshold.value, color="#d62728", ls="--", lw=2, label=f"threshold {spec.threshold.text}"
        )
    ax.axvline(_x(spec.incident_start), color="#444444", ls=":", lw=1.4, label="incident started")
    if spec.resolved_at is not None:
        ax.axvline(_x(spec.resolved_at), color="#2ca02c", ls=":", lw=1.4, label="resolved")
    for marker in spec.markers:
        ax.axvline(_x(marker.at), color="#9467bd", lw=1.5)
        ax.text(
            _x(marker.at),
            0.98,
            " " + _mpl(marker.label[:60]),
            transform=ax.get_xaxis_transform(),
            rotation=90,
            va="top",
            ha="left",
            fontsize=7,
            color="#9467bd",
        )
    hidden = len([s for s in series if s.points]) - len(drawn)
    if hidden > 0:
        ax.text(
            0.99, 0.02, f"+{hidden} more series not drawn", transform=ax.transAxes, ha="right", fontsize=7
        )
    ax.set_xlim(_x(spec.start), _x(spec.end))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_xlabel("UTC")
    ax.grid(alpha=0.3)
    ax.set_title(_mpl(spec.title[:140]), fontsize=10, loc="left")
    ax.legend(fontsize=7, loc="upper left")  # fixed: "best" searches the data and warns when slow
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class AlertGraphs:
    """Queues and delivers the graph; inert (queues nothing) without a Prometheus."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        outbox: Outbox,
        chat: GraphChat,
        prometheus: Prometheus | None,
        model_services: Mapping[str, str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions, self._outbox, self._chat = sessions, outbox, chat
        self._prometheus = prometheus
        self._model_services = dict(model_services)
        self._clock = clock

    # ---- queued in the caller's transaction (IncidentMessages' follow-ups) ---------------------------
    @staticmethod
    def _alerts(session: Session, incident_id: int) -> list[AlertRecord]:
        # queried, not the relationship: in the triage transaction the collection may predate its alerts
        return list(session.scalars(select(AlertRecord).where(AlertRecord.incident_id == incident_id)))

    def queue_new(self, session: Session, incident_id: int) -> OutboxMessage | None:
        """With the first post: once per incident (dedup key), only when an alert carries an expression."""
        if self._prometheus is None or graph_source(self._alerts(session, incident_id)) is None:
            return None
        return self._outbox.enqueue(
            session, kind=Kind.ALERT_GRAPH, incident_id=incident_id, dedup_key=f"alert_graph:{incident_id}"
        )

    def queue_update(self, session: Session, incident_id: int) -> OutboxMessage | None:
        """On the update that shows the incident resolved: the graph of the whole incident, once."""
        if self._prometheus is None:
            return None
        incident = get_incident(session, incident_id)
        if (
            incident.status != IncidentStatus.RESOLVED.value
            or graph_source(self._alerts(session, incident_id)) is None
        ):
            return None
        return self._outbox.enqueue(
            session,
            kind=Kind.ALERT_GRAPH,
            incident_id=incident_id,
            payload={"final": True},
            dedup_key=f"alert_graph:{incident_id}:resolved",
        )

    # ---- the outbox handler --------------------------------------------------------------------------
    def deliver(self, msg: OutboxMessage) -> Finalizer | None:
        if self._prometheus is None or msg.incident_id is None:
            return None
        final = bool((msg.payload or {}).get("final"))
        with self._sessions() as session:
            incident = get_incident(session, msg.incident_id)
            source = graph_source(incident.alerts)
            if incident.slack_ts is None or source is None:
                return None  # never posted (its post failed for good), or nothing to draw
            if final and self._resolution_shown(session, incident.id):
                return None  # the first graph was drawn after the resolve: it already shows it
            spec = self._spec(session, incident, *source)
        try:
            series = self._prometheus.query_range(
                spec.plotted, start=spec.start, end=spec.end, step=step_for(spec.start, spec.end)
            )
        except PrometheusError as exc:
            return self._say(
                msg, incident, spec, f"📉 No graph for {spec.alert_name}: {exc}", outcome="error"
            )
        if not any(s.points for s in series):
            text = (
                f"📉 No graph for {spec.alert_name}: Prometheus has no samples of `{spec.plotted[:300]}` "
                f"between {spec.start:%H:%M} and {spec.end:%H:%M} UTC"
            )
            return self._say(msg, incident, spec, text, outcome="no data")
        png = render_png(spec, series)
        self._outbox.renew(msg)  # the query and render may have been slow: never upload on an expired claim
        self._chat.upload_in_thread(
            incident,
            content=png,
            filename=f"incident-{incident.id}-{'resolved' if final else 'alert'}-graph.png",
            title=spec.title[:250] + (" (whole incident)" if spec.resolved_at else ""),
            alt_text=spec.alt_text(),
        )
        return self._recorded(spec, outcome="uploaded", series=len(series))

    def _say(
        self, msg: OutboxMessage, incident: Incident, spec: GraphSpec, text: str, *, outcome: str
    ) -> Finalizer:
        log.info("incident #%s: %s", incident.id, text)
        self._outbox.renew(msg)
        self._chat.post_in_thread(incident, text)
        return self._recorded(spec, outcome=outcome)

    @staticmethod
    def _recorded(spec: GraphSpec, *, outcome: str, series: int = 0) -> Finalizer:
        def record(session: Session) -> None:  # same transaction as marking the outbox row done
            audit.record(
                session,
                event=EVENT,
                actor="bot",
                incident_id=spec.incident_id,
                outcome=outcome,
                series=series,
                resolution_shown=spec.resolved_at is not None and outcome == "uploaded",
            )

        return record

    @staticmethod
    def _resolution_shown(session: Session, incident_id: int) -> bool:
        rows = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.incident_id == incident_id, AuditEvent.event == EVENT)
        )
        return any(bool((d or {}).get("resolution_shown")) for d in rows)

    def _spec(self, session: Session, incident: Incident, alert: AlertRecord, expr: str) -> GraphSpec:
        now = self._clock()
        starts = [_aware(a.starts_at) for a in incident.alerts if a.starts_at is not None]
        opened = _aware(incident.first_alert_at or incident.created_at) or now
        incident_start = min([opened, *(s for s in starts if s is not None)])
        resolved = _aware(incident.resolved_at) if incident.status == IncidentStatus.RESOLVED.value else None
        end = max(resolved or now, incident_start + timedelta(minutes=1))
        start = incident_start - BEFORE
        plotted, threshold = split_threshold(expr)
        changes = changes_between(
            session, incident, since=start, until=end, model_services=self._model_services, limit=MAX_MARKERS
        )
        markers = [
            Marker(
                _aware(c.occurred_at) or now,
                " ".join(p for p in (c.kind.replace("_", " "), c.service or c.model_name, c.version) if p),
            )
            for c in changes
        ]
        return GraphSpec(
            incident_id=incident.id,
            alert_name=alert.name,
            expr=expr,
            plotted=plotted,
            threshold=threshold,
            start=start,
            end=end,
            incident_start=incident_start,
            resolved_at=resolved,
            markers=markers,
        )
