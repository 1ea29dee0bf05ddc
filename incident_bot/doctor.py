"""Configuration and reachability checks, shared by `serve` (fail fast, one line) and `incident-bot doctor`
(a table). Each failed check names the setting to change and how.

Both run the same checks: the settings' own validation (``load_settings``: one line per bad variable),
placeholders left from .env.example, the runbooks and ``policy.yml`` as ``serve`` loads them, the database
and Slack; doctor also loads the embedding model. Warnings (e.g. reminders with nobody to mention) never
stop ``serve``; it logs them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

from bot.kernel.config import Settings, secret_value
from bot.kernel.envtext import env_name

PLACEHOLDER = re.compile(r"\.\.\.|^change-me|^<.*>$")  # what .env.example and the docs put where a value goes


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    setting: str = ""

    def line(self) -> str:
        return f"{self.setting or self.name}: {self.detail}"


def check_settings(s: Settings) -> list[Check]:
    out: list[Check] = []
    missing = [
        n
        for n, v in (("SLACK_BOT_TOKEN", s.slack_bot_token), ("SLACK_SIGNING_SECRET", s.slack_signing_secret))
        if not secret_value(v)
    ]
    out.append(
        Check(
            "slack credentials",
            "fail" if missing else "ok",
            f"{' and '.join(missing)} not set: copy them from your Slack app (README: Running it for real)"
            if missing
            else "set",
            ", ".join(missing),
        )
    )
    out.append(
        Check(
            "alert webhook token",
            "ok" if s.alert_webhook_token else "warn",
            "set" if s.alert_webhook_token else "not set: /alerts/* answer 503 until you set it",
            "ALERT_WEBHOOK_TOKEN",
        )
    )
    out.extend(check_placeholders(s))
    out.extend(check_reminders(s))
    if s.runbooks_dir is not None:
        ok = s.runbooks_dir.is_dir() and any(s.runbooks_dir.glob("*.md"))
        out.append(
            Check(
                "runbooks folder",
                "ok" if ok else "fail",
                f"{s.runbooks_dir}"
                if ok
                else f"{s.runbooks_dir} is not a folder of .md runbooks: fix the path or unset it",
                "RUNBOOKS_DIR",
            )
        )
    return out


def check_placeholders(s: Settings) -> list[Check]:
    """A value copied from .env.example without being filled in (``xoxb-...``, ``change-me``, the example
    channel id) fails here, not at the first Slack call."""
    out = []
    for field, info in Settings.model_fields.items():
        value = getattr(s, field)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str) or not text:
            continue
        if (isinstance(value, SecretStr) and PLACEHOLDER.search(text)) or (
            field == "incident_channel" and info.examples and text == info.examples[0]
        ):
            shown = "its value" if isinstance(value, SecretStr) else repr(text)
            out.append(
                Check(
                    "placeholder",
                    "fail",
                    f"{shown} is the example from .env.example: set the real one",
                    env_name(field),
                )
            )
    return out


def check_reminders(s: Settings) -> list[Check]:
    """Reminders with nobody to mention are skipped (bot/reports/reminders.py): say so before an incident does."""
    if (s.ack_reminder_minutes or s.ack_escalation_minutes) and not s.oncall_mention:
        owners = (
            " except for services whose catalog owner has a Slack user group" if s.service_catalog else ""
        )
        detail = (
            f"empty: acknowledgement reminders are skipped (nobody to mention){owners}; set it (e.g. "
            "ONCALL_MENTION=S0ONCALL) "
            "or turn them off with ACK_REMINDER_MINUTES=0"
            + ("" if s.escalation_mention else " and ACK_ESCALATION_MINUTES=0")
        )
        return [Check("reminders", "warn", detail, "ONCALL_MENTION")]
    return []


def check_runbooks_and_policy(s: Settings) -> list[Check]:
    """What ``serve`` loads before it takes traffic: the runbooks (each action validated against the
    configured executors) and policy.yml (fields, action types, and action ids that some runbook has)."""
    import httpx

    from bot.remediation.actions import ActionError, validate_actions
    from bot.remediation.policy import PolicyError, check_action_ids, load_policy
    from incident_bot.runtime import build_executors
    from retrieval.runbooks import load_runbooks

    out: list[Check] = []
    known: set[str] = set()
    with httpx.Client() as client:
        executors = build_executors(s, client)
    if s.runbooks_dir is not None and s.runbooks_dir.is_dir():
        runbooks, errors = load_runbooks(s.runbooks_dir)
        good = 0
        for rb in runbooks:
            try:
                actions = validate_actions(rb.actions, executors, path=rb.path or rb.id)
            except ActionError as exc:
                errors.append(str(exc))
                continue
            good += 1
            known |= {a.id for a in actions}
        out.append(
            Check("runbooks", "ok" if good else "warn", f"{good} valid in {s.runbooks_dir}", "RUNBOOKS_DIR")
        )
        out.extend(Check("runbook skipped", "warn", err, "RUNBOOKS_DIR") for err in errors)
    if s.policy_path is None:
        return out
    try:
        policy = load_policy(s.policy_path, action_types=set(executors))
        check_action_ids(policy, known | _stored_action_ids(s), path=s.policy_path)
    except PolicyError as exc:
        return [*out, Check("policy", "fail", str(exc), "POLICY_PATH")]
    return [
        *out,
        Check(
            "policy",
            "ok",
            f"{s.policy_path}: {len(policy.actions)} actions, {len(policy.types)} types",
            "POLICY_PATH",
        ),
    ]


def check_alert_sources(s: Settings) -> list[Check]:
    """The alert sources configured as ``serve`` configures them (e.g. GENERIC_FIELD_MAP's paths)."""
    from handlers.parsers import configure_sources

    try:
        configure_sources(s)
    except ValueError as exc:  # the message starts with the setting's name
        setting, _, detail = str(exc).partition(": ")
        return [Check("alert sources", "fail", detail or setting, setting if detail else "")]
    return []


def _stored_action_ids(s: Settings) -> set[str]:
    """Action ids of the runbooks already in the database (none when it is unreachable or not migrated)."""
    from bot.kernel.db import make_engine, make_sessionmaker
    from bot.remediation import runbook_store

    try:
        engine = make_engine(s.database_url)
    except Exception:
        return set()
    try:
        with make_sessionmaker(engine)() as session:
            return runbook_store.action_ids(session)
    except Exception:
        return set()
    finally:
        engine.dispose()


def check_database(s: Settings) -> list[Check]:
    from bot.kernel.db import make_engine, schema_status

    try:
        engine = make_engine(s.database_url)
    except Exception as exc:
        return [
            Check(
                "database",
                "fail",
                f"cannot use this URL ({type(exc).__name__}: {str(exc)[:120]})",
                "DATABASE_URL",
            )
        ]
    try:
        status = schema_status(engine)
    except Exception as exc:
        return [
            Check(
                "database",
                "fail",
                f"unreachable ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
                "DATABASE_URL",
            )
        ]
    finally:
        engine.dispose()
    return [
        Check("database", "ok", engine.url.render_as_string(hide_password=True), "DATABASE_URL"),
        Check(
            "migrations",
            "ok" if status == "ok" else "warn",
            "at head" if status == "ok" else f"{status} (serve migrates on start)",
            "DATABASE_URL",
        ),
    ]


def check_slack(s: Settings) -> list[Check]:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    token = secret_value(s.slack_bot_token)
    if not token:
        return []
    client = WebClient(token=token, base_url=s.slack_api_url or WebClient.BASE_URL, timeout=10)
    try:
        auth = client.auth_test()
    except SlackApiError as exc:
        return [
            Check(
                "slack auth.test",
                "fail",
                f"Slack refused the token ({exc.response.get('error')}): "
                "reinstall the app and copy the Bot User OAuth Token",
                "SLACK_BOT_TOKEN",
            )
        ]
    except Exception as exc:
        return [
            Check(
                "slack auth.test",
                "fail",
                f"Slack unreachable ({type(exc).__name__}): check network or SLACK_API_URL",
                "SLACK_API_URL",
            )
        ]
    out = [
        Check(
            "slack auth.test",
            "ok",
            f"bot {auth.get('user')} in team {auth.get('team_id')}",
            "SLACK_BOT_TOKEN",
        )
    ]
    channel = s.incident_channel
    if channel.startswith("#"):
        out.append(
            Check(
                "incident channel",
                "warn",
                f"{channel} is a name: set the channel ID (C…) so membership can be checked",
                "INCIDENT_CHANNEL",
            )
        )
        return out
    try:
        info = client.conversations_info(channel=channel)
    except SlackApiError as exc:
        return [
            *out,
            Check(
                "incident channel",
                "fail",
                f"{channel}: {exc.response.get('error')} (is the ID right, "
                "and does the app have channels:read / groups:read?)",
                "INCIDENT_CHANNEL",
            ),
        ]
    member = (info.get("channel") or {}).get("is_member")
    out.append(
        Check(
            "incident channel",
            "ok" if member else "fail",
            f"{channel}: bot is a member"
            if member
            else f"{channel}: the bot is not in the channel: /invite @{auth.get('user')} there",
            "INCIDENT_CHANNEL",
        )
    )
    return out


def check_embeddings(s: Settings) -> list[Check]:
    from incident_bot.runtime import build_encoder

    try:
        enc = build_encoder(s)
        enc.encode(["doctor"])
    except Exception as exc:
        return [
            Check(
                "embedding model",
                "fail",
                f"cannot load ({type(exc).__name__}: {str(exc)[:160]})",
                "EMBEDDING_MODEL_PATH",
            )
        ]
    return [
        Check(
            "embedding model",
            "ok",
            f"{getattr(enc, 'name', type(enc).__name__)} ({s.embedding_backend})",
            "EMBEDDING_BACKEND",
        )
    ]


def check_prometheus(s: Settings) -> list[Check]:
    """The alert graphs' Prometheus (only when set): a warning when unreachable, since incidents then say
    "No graph" in their thread but nothing else is affected."""
    if not s.prometheus_url:
        return []
    import httpx

    from bot.reports.promql import Prometheus, PrometheusError

    with httpx.Client() as client:
        prometheus = Prometheus(client=client, url=s.prometheus_url, timeout=s.prometheus_timeout_seconds)
        try:
            version = prometheus.version()
        except PrometheusError as exc:
            return [
                Check(
                    "prometheus",
                    "warn",
                    f"{exc}: incidents will say 'No graph' in their thread",
                    "PROMETHEUS_URL",
                )
            ]
    return [Check("prometheus", "ok", f"Prometheus {version} at {prometheus.shown}", "PROMETHEUS_URL")]


PREFLIGHT: list[Callable[[Settings], list[Check]]] = [
    check_settings,
    check_alert_sources,
    check_runbooks_and_policy,
    check_database,
    check_slack,
    check_prometheus,
]


def run_checks(s: Settings, *, embeddings: bool = True) -> list[Check]:
    out: list[Check] = []
    for step in [*PREFLIGHT, check_prometheus, *([check_embeddings] if embeddings else [])]:
        try:
            out.extend(step(s))
        except Exception as exc:  # a check itself must never crash the command
            logging.getLogger(__name__).debug("check failed", exc_info=True)
            out.append(Check(step.__name__, "fail", f"{type(exc).__name__}: {exc}"))
    return out


def table(checks: list[Check]) -> str:
    w = max([len(c.name) for c in checks] + [5])
    return "\n".join(f"{c.status.upper():4}  {c.name:{w}}  {c.detail}" for c in checks)
