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

from bot import runbook_store
from bot.advisor import Advisor
from bot.config import Settings, secret_value
from bot.db import make_engine, make_sessionmaker, transaction, upgrade
from bot.executors import WebhookExecutor
from bot.knowledge import KnowledgeBase
from bot.service import IncidentService, Services
from bot.triage import Triage
from handlers import slack_approvals, slack_commands, slack_home, slack_incidents
from handlers.http import build_http_app
from handlers.metrics_http import add_metrics_route
from handlers.slack_notifier import SlackNotifier
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

    def close(self) -> None:
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


def build_runtime(settings: Settings, *, encoder: Encoder | None = None,
                  listener_executor: Executor | None = None) -> Runtime:
    token, secret = secret_value(settings.slack_bot_token), secret_value(settings.slack_signing_secret)
    if not token or not secret:
        raise ConfigError("SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set (see README: Settings); "
                          "`incident-bot demo` runs without a Slack account.")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    if settings.runbooks_dir is not None:
        with transaction(sessions) as session:
            report = runbook_store.import_dir(session, settings.runbooks_dir, actor="startup")
        for err in report.errors:
            log.warning("runbook skipped: %s", err)
    kb = build_kb(settings, encoder=encoder, engine=engine)
    client = WebClient(token=token, base_url=settings.slack_api_url or WebClient.BASE_URL)
    http_client = httpx.Client(follow_redirects=False)
    services = Services(
        sessions=sessions, triage=Triage(window=timedelta(minutes=settings.group_window_minutes)),
        advisor=Advisor(kb=kb, runbooks=RunbookIndex(kb.encoder), top_k=settings.similar_top_k),
        notifier=SlackNotifier(client=client, channel=settings.incident_channel),
        executor=WebhookExecutor(client=http_client, base_url=settings.action_base_url,
                                 secret=settings.executor_hmac_secret, timeout=settings.executor_timeout_seconds),
        kb=kb, model_owners=settings.model_owners,
    )
    if settings.executor_hmac_secret is None:
        log.warning("EXECUTOR_HMAC_SECRET is not set: action webhooks will be sent unsigned")
    service = IncidentService(services)
    bolt_kwargs = {"listener_executor": listener_executor} if listener_executor is not None else {}
    bolt = App(signing_secret=secret, client=client, token_verification_enabled=False,
               **bolt_kwargs)
    for feature in (slack_incidents, slack_approvals, slack_commands, slack_home):
        feature.register(bolt, service)
    socket_mode = settings.slack_app_token is not None
    http = build_http_app(service=service, settings=settings, bolt=None if socket_mode else bolt)
    add_metrics_route(http)  # prometheus_client.REGISTRY; `serve` registers the KPI collector on it
    return Runtime(settings=settings, engine=engine, service=service, bolt=bolt, http=http, http_client=http_client)
