"""Composition root: builds every service once from Settings and wires the edge (handlers/) to the core."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from slack_bolt import App
from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.advice.advisor import Advisor
from bot.advice.context import ContextFinder
from bot.advice.knowledge import KnowledgeBase
from bot.advice.messages import IncidentMessages
from bot.catalog.loader import CatalogSource
from bot.catalog.lookup import ServiceCatalog
from bot.catalog.origin import OriginParams
from bot.catalog.owners import service_owner_members
from bot.intake.model_registry import MlflowRegistrations
from bot.kernel import locks, logcontext
from bot.kernel.config import Settings, secret_value
from bot.kernel.db import make_engine, make_sessionmaker, transaction, upgrade
from bot.kernel.db_types import utcnow
from bot.kernel.errors import ConfigError
from bot.kernel.outbox import Kind, Outbox
from bot.kernel.scheduler import Scheduler, hold_lease
from bot.remediation import runbook_store
from bot.remediation.directory import GroupCache
from bot.remediation.flow import Remediation
from bot.remediation.guardrails import Offer
from bot.remediation.policy import Policy, PolicyError, PolicySource, check_action_ids
from bot.remediation.registry import EXECUTOR_FACTORIES, ExecutorRegistry
from bot.reports import reminders
from bot.reports.alert_graph import AlertGraphs
from bot.reports.collector import KpiCollector
from bot.reports.promql import Prometheus
from bot.service import IncidentService
from bot.triage.engine import Triage
from bot.triage.policy import TriagePolicy
from handlers.http.app import build_http_app
from handlers.slack import register_listeners
from handlers.slack.jobs import SlackJobChat
from handlers.slack.notifier import SlackNotifier
from handlers.slack.socket_mode import SocketMode
from retrieval.encoder import Encoder, make_encoder
from retrieval.runbook_rank import RunbookIndex

log = logging.getLogger(__name__)
KPI_GAUGES_LEASE = "kpi-gauges"  # job_leases row: the replica holding it exports the KPI gauges
# The lease is renewed at each scrape (the gauges are cached 60 s) and lapses 5 min after its holder stops.
KPI_GAUGES_LEASE_TTL = timedelta(minutes=5)


@dataclass
class Runtime:
    """What ``build_runtime`` made. The collaborators are here for the composition's own callers (serve, the
    demo, tests); the core never reaches them through here."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    kb: KnowledgeBase
    advisor: Advisor
    service: IncidentService
    messages: IncidentMessages
    remediation: Remediation
    chat: SlackNotifier
    bolt: App
    http: FastAPI
    http_client: httpx.Client
    outbox: Outbox
    scheduler: Scheduler
    socket_mode: SocketMode | None = None  # when SLACK_APP_TOKEN is set; serve connects it
    _kpi_collector: KpiCollector | None = None

    def start(self, *, outbox_threads: int) -> None:
        """Start the background work of ``serve`` and the demo: outbox workers, scheduled jobs, KPI gauges.
        The advice path is warmed first, so the first incident's post does not wait for it."""
        self.warm()
        self.outbox.start(threads=outbox_threads)
        self.scheduler.start()
        self._kpi_collector = KpiCollector(
            self.sessions,
            max_services=self.settings.metrics_max_services,
            exporter=lambda: hold_lease(
                self.sessions, KPI_GAUGES_LEASE, holder=self.scheduler.holder, ttl=KPI_GAUGES_LEASE_TTL
            ),
        )  # the whole-database gauges, exported by the one replica holding the lease
        REGISTRY.register(self._kpi_collector)  # served on /metrics

    def warm(self) -> None:
        """Runbook passage embeddings and the knowledge index's first search, before the first alert."""
        started = time.perf_counter()
        with self.sessions() as session:
            runbooks = self.advisor.warm(session)
        log.info("advice warmed in %.1fs (%d runbooks embedded)", time.perf_counter() - started, runbooks)

    def close(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.close()
        self.scheduler.shutdown()
        self.outbox.stop()
        if self._kpi_collector is not None:
            REGISTRY.unregister(self._kpi_collector)
            self._kpi_collector = None
        self.http_client.close()
        self.engine.dispose()


def build_encoder(settings: Settings) -> Encoder:
    return make_encoder(settings.embedding_model_path, settings.embedding_backend)


def build_kb(
    settings: Settings, *, encoder: Encoder | None = None, engine: Engine | None = None
) -> KnowledgeBase:
    engine = engine or make_engine(settings.database_url)
    upgrade(engine)
    kb = KnowledgeBase(sessions=make_sessionmaker(engine), encoder=encoder or build_encoder(settings))
    kb.load()
    return kb


def build_executors(settings: Settings, http_client: httpx.Client) -> ExecutorRegistry:
    """The executor registry: every executor module's factory in turn (bot/remediation/registry.py's table);
    a module that is not configured adds nothing."""
    registry = ExecutorRegistry()
    for from_settings in EXECUTOR_FACTORIES:
        for executor in from_settings(settings, http_client):
            registry.add(executor)
    return registry


def build_catalog(settings: Settings) -> ServiceCatalog:
    """SERVICE_CATALOG, validated now (a bad file stops start-up naming the file and entry), then re-read
    whenever a file changes."""
    source = CatalogSource(settings.service_catalog, owner_groups=settings.service_owner_groups)
    return ServiceCatalog(source, OriginParams(window=timedelta(minutes=settings.origin_window_minutes)))


def build_policy(settings: Settings, executors: ExecutorRegistry) -> PolicySource:
    """policy.yml, validated now (a bad file stops the start); re-read at each decision when it changed."""
    try:
        return PolicySource(settings.policy_path, action_types=set(executors))
    except PolicyError as exc:
        raise ConfigError(f"POLICY_PATH: {exc}") from None


def build_runtime(
    settings: Settings, *, encoder: Encoder | None = None, listener_executor: Executor | None = None
) -> Runtime:
    """The one composition: serve, the demo and the tests all build the runtime here, every outbox handler
    and scheduled job included. Nothing runs until ``Runtime.start()``."""
    token, secret = secret_value(settings.slack_bot_token), secret_value(settings.slack_signing_secret)
    if not token or not secret:
        raise ConfigError(
            "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set (see README: Settings); "
            "`incident-bot demo` runs without a Slack account."
        )
    catalog = build_catalog(settings)
    http_client = httpx.Client(follow_redirects=False)
    executors = build_executors(settings, http_client)
    policy = build_policy(settings, executors)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    if settings.runbooks_dir is not None:
        with transaction(sessions) as session:
            locks.xact_lock(session, ["startup:runbooks-import"])  # replicas starting together take turns
            report = runbook_store.import_dir(
                session, settings.runbooks_dir, registry=executors, actor="startup"
            )
        for err in report.errors:
            log.warning("runbook skipped: %s", err)
        for warning in report.warnings:
            log.warning("runbook action not available: %s", warning)

    def known_actions() -> set[str]:
        with sessions() as session:
            return runbook_store.action_ids(session)

    def check_ids(current: Policy) -> None:  # policy.yml may name only actions that exist
        check_action_ids(current, known_actions(), path=settings.policy_path)

    try:
        check_ids(policy.current())
    except PolicyError as exc:
        engine.dispose()
        raise ConfigError(f"POLICY_PATH: {exc}") from None
    policy.extra_check = check_ids  # a policy.yml edited later is held to the same check
    kb = build_kb(settings, encoder=encoder, engine=engine)
    client = WebClient(
        token=token,
        base_url=settings.slack_api_url or WebClient.BASE_URL,
        # a float: urllib takes fractions, and int() made SLACK_TIMEOUT_SECONDS=0.5 a 0 s timeout
        timeout=settings.slack_timeout_seconds,  # type: ignore[arg-type]  # slack_sdk annotates int
    )
    outbox = Outbox(
        sessions,
        coalesce_seconds=settings.slack_update_interval_seconds,
        lease_seconds=settings.outbox_lease_seconds,
    )
    chat = SlackNotifier(
        client=client,
        channel=settings.incident_channel,
        reopen_grace=timedelta(minutes=settings.reopen_grace_minutes),
    )
    groups = GroupCache(chat.usergroup_members)
    remediation = Remediation(
        sessions=sessions,
        executors=executors,
        policy=policy,
        chat=chat,
        model_owners=settings.model_owners,
        groups=groups,
        outbox=outbox,
        service_owners=lambda service: service_owner_members(
            catalog.catalog, service, lambda group: groups.read(group)[0]
        ),
    )
    advisor = Advisor(
        kb=kb,
        runbooks=RunbookIndex(kb.encoder),
        top_k=settings.similar_top_k,
        offer=Offer(executors=executors, rule_for=remediation.rule),
        context=ContextFinder(
            change_window=timedelta(minutes=settings.change_window_minutes),
            model_services=settings.model_services,
            catalog=catalog,
        ),
    )
    graphs = AlertGraphs(
        sessions=sessions,
        outbox=outbox,
        chat=chat,
        prometheus=(
            Prometheus(
                client=http_client, url=settings.prometheus_url, timeout=settings.prometheus_timeout_seconds
            )
            if settings.prometheus_url
            else None
        ),
        model_services=settings.model_services,
    )
    messages = IncidentMessages(
        sessions=sessions,
        outbox=outbox,
        advisor=advisor,
        chat=chat,
        oncall_mention=settings.oncall_mention,
        followups=[graphs],
    )
    service = IncidentService(
        sessions=sessions,
        messages=messages,
        remediation=remediation,
        kb=kb,
        outbox=outbox,
        triage=Triage(
            window=timedelta(minutes=settings.group_window_minutes),
            policy=TriagePolicy.from_settings(settings),
            related=catalog.related_ids,
        ),
        priority_of=catalog.priority_of,
        registrations=(
            MlflowRegistrations(
                client=http_client,
                tracking_uri=settings.mlflow_tracking_uri,
                token=settings.mlflow_tracking_token,
                timeout=settings.executor_timeout_seconds,
            )
            if settings.mlflow_tracking_uri
            else None
        ),
    )
    # Every outbox handler, in one place: any replica delivers what any replica queued.
    for kind, handler in messages.handlers().items():
        outbox.register(kind, handler)
    outbox.register(Kind.ALERT_GRAPH, graphs.deliver)
    outbox.register_prepare(Kind.ADVISE, messages.prepare_advice)  # a burst's query embeddings in one call
    outbox.register(Kind.POST_APPROVAL, remediation.deliver_prompt)
    outbox.register(Kind.UPDATE_APPROVAL, remediation.deliver_prompt_update)
    outbox.register(Kind.APPROVAL_RESULT, remediation.deliver_result)
    outbox.register(Kind.FREEZE_NOTICE, remediation.deliver_freeze_notice)
    reminders.register_delivery(
        outbox,
        chat=SlackJobChat(client=client, channel=settings.incident_channel),
        sessions=sessions,
        settings=settings,
    )
    try:
        scheduler = build_scheduler(
            settings, sessions=sessions, kb=kb, service=service, outbox=outbox, catalog=catalog
        )
    except ValueError as exc:  # e.g. a DIGEST_SCHEDULE that does not parse
        engine.dispose()
        raise ConfigError(str(exc)) from None
    if settings.executor_hmac_secret is None:
        log.warning("EXECUTOR_HMAC_SECRET is not set: action webhooks will be sent unsigned")
    bolt = App(
        signing_secret=secret,
        client=client,
        token_verification_enabled=False,
        listener_executor=listener_executor or logcontext.ContextThreadPool(max_workers=10),
    )  # Bolt's default pool size; its tasks keep the click's log context
    register_listeners(bolt, service)
    app_token = secret_value(settings.slack_app_token)
    socket_mode = SocketMode(bolt, app_token) if app_token else None  # connected by serve
    try:
        http = build_http_app(
            service=service,
            settings=settings,
            bolt=None if socket_mode else bolt,
            socket_mode=socket_mode,
        )
    except ValueError as exc:  # a setting the HTTP edge cannot use, e.g. a bad GENERIC_FIELD_MAP path
        engine.dispose()
        raise ConfigError(str(exc)) from None
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        kb=kb,
        advisor=advisor,
        service=service,
        messages=messages,
        remediation=remediation,
        chat=chat,
        bolt=bolt,
        http=http,
        http_client=http_client,
        outbox=outbox,
        scheduler=scheduler,
        socket_mode=socket_mode,
    )


def build_scheduler(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    kb: KnowledgeBase,
    service: IncidentService,
    outbox: Outbox,
    catalog: ServiceCatalog | None = None,
) -> Scheduler:
    """Every scheduled job (each runs once per period across replicas; off when its setting is 0 or "")."""
    scheduler = Scheduler(sessions)

    def refit() -> None:
        report = kb.refit_weights()
        if report is not None:
            log.info("fusion weights refit from feedback: %s", report)

    scheduler.add("refit-weights", refit, every=timedelta(hours=6), run_now=True)
    scheduler.add("retry-unposted", service.retry_unposted, every=timedelta(seconds=60))
    scheduler.add("expire-requests", service.expire_requests, every=timedelta(seconds=30))

    def run(fn: Callable[..., object]) -> Callable[[], object]:
        return lambda: fn(now=utcnow(), sessions=sessions, settings=settings, outbox=outbox)

    if settings.ack_reminder_minutes > 0 or settings.ack_escalation_minutes > 0:

        def ack() -> object:  # priority and owner group from the catalog (bot/catalog)
            return reminders.ack_reminders(
                now=utcnow(), sessions=sessions, settings=settings, outbox=outbox, catalog=catalog
            )

        scheduler.add("ack-reminders", ack, every=timedelta(minutes=1))
    if settings.rca_reminder_hours > 0:
        scheduler.add("rca-reminders", run(reminders.rca_reminders), every=timedelta(minutes=15))
    trigger = reminders.digest_trigger(settings.digest_schedule)
    if trigger is not None:  # the digest also claims its ISO week in audit_events: once across replicas
        scheduler.add_cron("weekly-digest", run(reminders.weekly_digest), every=timedelta(days=7), **trigger)
    return scheduler
