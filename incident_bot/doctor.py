"""Configuration and reachability checks, shared by `serve` (fail fast, one line) and `incident-bot doctor`
(a table). Each failed check names the setting to change and how."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.kernel.config import Settings, secret_value

LOG_LEVELS = {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}
BACKENDS = {"torch", "onnx", "onnx-int8"}


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
    bad = []
    if s.log_level.upper() not in LOG_LEVELS:
        bad.append(("LOG_LEVEL", f"{s.log_level!r} is not one of {', '.join(sorted(LOG_LEVELS))}"))
    if s.log_format.lower() not in {"text", "json"}:
        bad.append(("LOG_FORMAT", f"{s.log_format!r} is not text or json"))
    if s.embedding_backend not in BACKENDS:
        bad.append(
            ("EMBEDDING_BACKEND", f"{s.embedding_backend!r} is not one of {', '.join(sorted(BACKENDS))}")
        )
    if s.outbox_workers < 1:
        bad.append(("OUTBOX_WORKERS", "must be at least 1"))
    for setting, detail in bad:
        out.append(Check("setting", "fail", detail, setting))
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


PREFLIGHT: list[Callable[[Settings], list[Check]]] = [check_settings, check_database, check_slack]


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
