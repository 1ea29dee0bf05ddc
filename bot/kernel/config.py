"""Settings, read once from the environment (and an optional .env) and passed down explicitly.

Adding a setting is one line in ``Settings``: ``name: type = Field(default, description="...")`` (plus bounds
such as ``ge=0`` and, when the default says little, ``examples=["..."]``). From that line follow: the
environment variable (``NAME``), ``.env.example`` (generated: ``incident-bot settings example``, kept equal
by tests/test_settings_example.py), the one-line error naming the variable and a valid value
(``load_settings``), and the list/map syntax below.

Lists and maps take one syntax everywhere: JSON (``["U1", "U2"]``, ``{"fraud-model": ["U1"]}``) or comma
separated (``U1,U2``; ``key=value,key=value``, a repeated key adds to a list-valued map:
``fraud-model=U1,fraud-model=U2``). An empty value is the empty list or map.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from bot.kernel.envtext import error_lines, parse_env_text
from bot.kernel.errors import ConfigError

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
SLACK_ID = re.compile(r"^[SUW][A-Z0-9]+$")  # a user group (S...) or a user (U.../W...)
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LOG_FORMATS = ("text", "json")
EMBEDDING_BACKENDS = ("torch", "onnx", "onnx-int8")
_DIGEST = re.compile(r"^((mon|tue|wed|thu|fri|sat|sun) ([01]?\d|2[0-3]):[0-5]\d)?$")


class Settings(BaseSettings):
    """Every setting is an environment variable of the same name in upper case.

    Secrets are ``SecretStr`` so they print as ``**********`` in logs, reprs and errors.
    """

    # enable_decoding=False: lists and maps reach ``_lists_and_maps`` as the raw text, so both syntaxes work
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", enable_decoding=False
    )

    database_url: str = Field(
        "sqlite:///incident-bot.db",
        description="SQLAlchemy URL; postgresql://... uses pgvector (the migration creates the extension).",
        examples=["postgresql://incident_bot:secret@db:5432/incident_bot"],
    )
    slack_bot_token: SecretStr | None = Field(
        None, description="Bot User OAuth Token (secret); required by serve.", examples=["xoxb-..."]
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="Slack request signing secret (secret); required by serve.", examples=["..."]
    )
    slack_app_token: SecretStr | None = Field(
        None,
        description="App-level token (secret): Slack traffic over Socket Mode; alert endpoints stay on HTTP.",
        examples=["xapp-..."],
    )
    slack_api_url: str | None = Field(
        None,
        description="Slack Web API base URL override (tests, the demo).",
        examples=["http://127.0.0.1:3001/api/"],
    )
    incident_channel: str = Field(
        "#incidents",
        description="Channel for incident messages; a channel id (C0123...) lets doctor check membership.",
        examples=["C0123456789"],
    )
    alert_webhook_token: SecretStr | None = Field(
        None,
        description="Bearer token for /alerts/* and /changes (secret); they answer 503 until it is set.",
        examples=["change-me-long-random"],
    )
    runbooks_dir: Path | None = Field(
        None, description="Folder of Markdown runbooks imported at start.", examples=["./examples/runbooks"]
    )
    action_base_url: str | None = Field(
        None,
        description="Base URL that relative runbook action URLs (/actions/...) are joined to.",
        examples=["https://automation.internal.example.com"],
    )
    executor_hmac_secret: SecretStr | None = Field(
        None,
        description="Key that signs action webhooks (secret); unset: sent unsigned.",
        examples=["change-me"],
    )
    executor_timeout_seconds: float = Field(10.0, gt=0, description="Action webhook timeout, seconds.")
    group_window_minutes: int = Field(
        30, ge=0, description="Grouping window for alerts without a group key (service + alert name)."
    )
    embedding_model_path: str | None = Field(
        None,
        description="A local sentence-transformers model folder; unset: the bundled all-MiniLM-L6-v2.",
        examples=["/models/all-MiniLM-L6-v2"],
    )
    embedding_backend: str = Field("torch", description="Embedding backend: torch, onnx or onnx-int8.")
    adapted_models_dir: Path = Field(
        Path("models"),
        description="Where `kb adapt` saves adapted embedding models; every replica must see the same folder.",
    )
    similar_top_k: int = Field(3, ge=1, le=20, description="Similar past incidents shown per incident.")
    model_owners: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Who may approve as `model-owner`, per model (user ids); never taken from alert payloads.",
        examples=["fraud-model=U0MLOWNER,fraud-model=U0MLLEAD"],
    )
    change_window_minutes: int = Field(
        60, ge=0, description="Changes this long before an incident are shown on it."
    )
    flap_window_minutes: int = Field(
        30,
        ge=0,
        description="An alert firing again this soon after resolving re-opens its incident in place.",
    )
    flap_threshold: int = Field(2, ge=1, description="Re-fires after which an incident is marked flapping.")
    dedup_window_minutes: int = Field(
        60, ge=0, description="Repeated resolves of a resolved alert are duplicates (not orphans) this long."
    )
    reopen_grace_minutes: int = Field(
        10,
        ge=0,
        description="After a person's Resolve, a source still firing re-opens the incident after this.",
    )
    correlation_window_minutes: int = Field(
        60, ge=0, description="Model and infrastructure incidents this close in time are linked."
    )
    model_services: dict[str, str] = Field(
        default_factory=dict,
        description="The service that serves each model.",
        examples=["fraud-model=fraud-scoring"],
    )
    log_level: str = Field("INFO", description="Level of the bot's own loggers: DEBUG, INFO, WARNING, ERROR.")
    # Remediation executors (bot/remediation/executors): MLflow alias rollback and Kubernetes Deployments.
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking server for mlflow_rollback; the executor is registered only when set.",
        examples=["http://mlflow:5000"],
    )
    mlflow_tracking_token: SecretStr | None = Field(
        None, description="Bearer token for MLflow (secret).", examples=["..."]
    )
    k8s_api_url: str | None = Field(
        None,
        description="Kubernetes API server for k8s_restart/k8s_scale; registered only when set.",
        examples=["https://10.0.0.1:6443"],
    )
    k8s_token: SecretStr | None = Field(
        None, description="Bearer token of the bot's Kubernetes service account (secret).", examples=["..."]
    )
    k8s_ca_cert: Path | None = Field(
        None,
        description="CA bundle file for the Kubernetes API server's certificate.",
        examples=["/etc/k8s/ca.crt"],
    )
    k8s_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces the Kubernetes actions may touch; empty: none.",
        examples=["shop,ml"],
    )
    k8s_verify_tls: bool = Field(True, description="Verify the Kubernetes API server's certificate.")
    pagerduty_webhook_secret: SecretStr | None = Field(
        None,
        description="PagerDuty v3 webhook secret (secret): /alerts/pagerduty also accepts a valid signature.",
        examples=["..."],
    )
    generic_field_map: dict[str, str] = Field(
        default_factory=dict,
        description="Where /alerts/generic finds its fields in a foreign body (JSONPath-like); "
        "empty: the generic format as documented.",
        examples=['{"name": "$.rule.title", "service": "$.tags.service"}'],
    )
    policy_path: Path | None = Field(
        None,
        description="policy.yml: who may approve which action, N-of-M, TTL, scope, rate limit.",
        examples=["./policy.yml"],
    )
    log_format: str = Field("text", description="text, or json (one JSON object per line).")
    metrics_max_services: int = Field(
        20,
        ge=0,
        description="KPI gauges on /metrics get a service label for the first N services seen (by first "
        'incident); the rest are summed as service="other" (bounded series).',
    )
    slack_timeout_seconds: float = Field(
        10.0, gt=0, description="Slack Web API call timeout, seconds (fractions allowed).", examples=["0.5"]
    )
    slack_update_interval_seconds: float = Field(
        3.0, ge=0, description="At most one chat.update per incident message per this many seconds."
    )
    outbox_workers: int = Field(2, ge=1, le=64, description="Slack delivery threads per replica.")
    http_body_timeout_seconds: float = Field(
        10.0,
        ge=0,
        description="A request body must arrive within this many seconds, else 408 (slow clients); 0: off.",
    )
    outbox_lease_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a claimed Slack message is reserved before another replica may retry it.",
    )
    # KPI jobs (bot/reports/reminders.py): a 0 or an empty schedule turns a job off
    digest_schedule: str = Field(
        "mon 09:00", description='Weekly KPI digest, "<mon..sun> HH:MM" UTC; empty: off.'
    )
    digest_stale_hours: int = Field(24, ge=0, description="The digest lists open incidents older than this.")
    ack_reminder_minutes: int = Field(
        15, ge=0, description="Unacknowledged this long: a reminder mentioning ONCALL_MENTION; 0: off."
    )
    ack_escalation_minutes: int = Field(
        30, ge=0, description="Unacknowledged this long: an escalation mentioning ESCALATION_MENTION; 0: off."
    )
    oncall_mention: list[str] = Field(
        default_factory=list,
        description="Slack user group (S...) or user ids mentioned by reminders; empty: reminders are skipped.",
        examples=["S0ONCALL,U0LEAD"],
    )
    escalation_mention: list[str] = Field(
        default_factory=list,
        description="Ids mentioned by the escalation; empty: ONCALL_MENTION.",
        examples=["U0SRELEAD"],
    )
    rca_reminder_hours: int = Field(
        24, ge=0, description="Resolved this long without an RCA note: a reminder; 0: off."
    )

    # Service catalog (bot/catalog): Backstage catalog-info.yaml or the plain form; re-read when a file changes
    service_catalog: Path | None = Field(
        default=None,
        description="A catalog file or a folder of them (Backstage catalog-info.yaml or plain YAML).",
    )
    service_owner_groups: dict[str, str] = Field(
        default_factory=dict,
        description="Catalog owner -> Slack user group id, e.g. group:payments-team=S0PAYMENTS; "
        "an entry's incident-bot/slack-usergroup annotation wins.",
        examples=['{"group:payments-team": "S0PAYMENTS"}'],
    )
    origin_window_minutes: int = Field(
        30, ge=0, description="Incidents on connected services within this many minutes are related."
    )
    # The alert's own graph in the incident thread (bot/reports/alert_graph.py)
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus whose query_range draws an Alertmanager alert's expression (its generatorURL's "
        "g0.expr) into the incident thread. Unset: no graphs.",
    )
    prometheus_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long the graph waits for Prometheus before saying so in the thread.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _lists_and_maps(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or info.field_name is None:
            return value
        return parse_env_text(cls.model_fields[info.field_name].annotation, value)

    @field_validator("oncall_mention", "escalation_mention")
    @classmethod
    def _slack_ids(cls, value: list[str]) -> list[str]:
        for v in value:
            if not SLACK_ID.match(v):
                raise ValueError(f"{v!r} is not a Slack user group (S...) or user (U.../W...) id")
        return value

    @field_validator("model_owners")
    @classmethod
    def _owner_ids(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for model, ids in value.items():
            for v in ids:
                if not SLACK_ID.match(v):
                    raise ValueError(f"{model}: {v!r} is not a Slack user id (U.../W...)")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.strip().lower() not in LOG_FORMATS:
            raise ValueError(f"{value!r} is not text or json")
        return value.strip().lower()

    @field_validator("embedding_backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        if value.strip() not in EMBEDDING_BACKENDS:
            raise ValueError(f"{value!r} is not one of {', '.join(EMBEDDING_BACKENDS)}")
        return value.strip()

    @field_validator("digest_schedule")
    @classmethod
    def _digest(cls, value: str) -> str:
        text = " ".join(value.strip().lower().split())
        if not _DIGEST.match(text):
            raise ValueError(f'{value!r} is not "<mon..sun> HH:MM" (UTC) or empty')
        return text


def secret_value(secret: SecretStr | None) -> str | None:
    """The secret, or None when unset or empty: ``ALERT_WEBHOOK_TOKEN=`` must not make an empty bearer token
    (or an empty signing key) a valid credential."""
    value = secret.get_secret_value() if secret is not None else ""
    return value or None


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value raises ConfigError with one line per bad variable
    (``SLACK_TIMEOUT_SECONDS='soon': not a number; e.g. SLACK_TIMEOUT_SECONDS=0.5``)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("\n".join(error_lines(exc, Settings.model_fields))) from None
    except SettingsError as exc:  # e.g. a .env file that cannot be read
        raise ConfigError(" ".join(str(exc).split())[:300]) from None
