"""Composition root: builds every service once from Settings and wires the edge (handlers/) to the core."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta

import httpx
from fastapi import FastAPI
from slack_bolt import App
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.advice.advisor import Advisor
from bot.advice.context import ContextFinder
from bot.advice.knowledge import KnowledgeBase
from bot.kernel import locks
from bot.kernel.config import Settings, secret_value
from bot.kernel.db import make_engine, make_sessionmaker, transaction, upgrade
from bot.kernel.outbox import Outbox
from bot.remediation import runbook_store
from bot.remediation.directory import GroupCache
from bot.remediation.flow import Remediation
from bot.remediation.guardrails import Offer
from bot.remediation.policy import Policy, PolicyError, load_policy
from bot.remediation.registry import EXECUTOR_FACTORIES, ExecutorRegistry
from bot.service import IncidentService, Services
from bot.triage.engine import Triage, TriagePolicy
from handlers.http.app import build_http_app
from handlers.slack import approvals as slack_approvals
from handlers.slack import commands as slack_commands
from handlers.slack import common as slack_common
from handlers.slack import home as slack_home
from handlers.slack import incidents as slack_incidents
from handlers.slack.notifier import SlackNotifier
from retrieval.encoder import Encoder, make_encoder
from retrieval.runbook_rank import RunbookIndex

log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    service: IncidentService
    bolt: App
    http: FastAPI
    http_client: httpx.Client
    outbox: Outbox | None = None

    def close(self) -> None:
        if self.outbox is not None:
            self.outbox.stop()
        self.http_client.close()
        self.engine.dispose()


def build_encoder(settings: Settings) -> Encoder:
    return make_encoder(settings.embedding_model_path, settings.embedding_backend)


def build_kb(settings: Settings, *, encoder: Encoder | None = None, engine: Engine | None = None) -> KnowledgeBase:
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


def build_policy(settings: Settings, executors: ExecutorRegistry) -> Policy:
    try:
        return load_policy(settings.policy_path, action_types=set(executors))
    except PolicyError as exc:
        raise ConfigError(f"POLICY_PATH: {exc}") from None


def build_runtime(settings: Settings, *, encoder: Encoder | None = None,
                  listener_executor: Executor | None = None) -> Runtime:
    token, secret = secret_value(settings.slack_bot_token), secret_value(settings.slack_signing_secret)
    if not token or not secret:
        raise ConfigError("SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set (see README: Settings); "
                          "`incident-bot demo` runs without a Slack account.")
    http_client = httpx.Client(follow_redirects=False)
    executors = build_executors(settings, http_client)
    policy = build_policy(settings, executors)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    if settings.runbooks_dir is not None:
        with transaction(sessions) as session:
            locks.xact_lock(session, ["startup:runbooks-import"])  # replicas starting together take turns
            report = runbook_store.import_dir(session, settings.runbooks_dir, registry=executors, actor="startup")
        for err in report.errors:
            log.warning("runbook skipped: %s", err)
    kb = build_kb(settings, encoder=encoder, engine=engine)
    client = WebClient(token=token, base_url=settings.slack_api_url or WebClient.BASE_URL,
                       timeout=int(settings.slack_timeout_seconds))
    outbox = Outbox(sessions, coalesce_seconds=settings.slack_update_interval_seconds,
                    lease_seconds=settings.outbox_lease_seconds)
    notifier = SlackNotifier(client=client, channel=settings.incident_channel)
    remediation = Remediation(sessions=sessions, executors=executors, policy=policy, notifier=notifier,
                              model_owners=settings.model_owners, groups=GroupCache(notifier.usergroup_members),
                              outbox=outbox)
    services = Services(
        sessions=sessions, triage=Triage(window=timedelta(minutes=settings.group_window_minutes),
                                         policy=TriagePolicy.from_settings(settings)),
        advisor=Advisor(kb=kb, runbooks=RunbookIndex(kb.encoder), top_k=settings.similar_top_k,
                        offer=Offer(executors=executors, rule_for=remediation.rule),
                        context=ContextFinder(change_window=timedelta(minutes=settings.change_window_minutes),
                                              model_services=settings.model_services)),
        notifier=notifier, remediation=remediation, kb=kb, model_owners=settings.model_owners, outbox=outbox,
    )
    if settings.executor_hmac_secret is None:
        log.warning("EXECUTOR_HMAC_SECRET is not set: action webhooks will be sent unsigned")
    service = IncidentService(services)
    bolt_kwargs = {"listener_executor": listener_executor} if listener_executor is not None else {}
    bolt = App(signing_secret=secret, client=client, token_verification_enabled=False,
               **bolt_kwargs)
    for feature in (slack_incidents, slack_approvals, slack_commands, slack_home):
        feature.register(bolt, service)
    slack_common.register_error_handler(bolt, service)
    socket_mode = settings.slack_app_token is not None
    try:
        http = build_http_app(service=service, settings=settings, bolt=None if socket_mode else bolt)
    except ValueError as exc:  # a setting the HTTP edge cannot use, e.g. a bad GENERIC_FIELD_MAP path
        engine.dispose()
        raise ConfigError(str(exc)) from None
    return Runtime(settings=settings, engine=engine, service=service, bolt=bolt, http=http, http_client=http_client,
                   outbox=outbox)
