"""Settings, read once from the environment (and an optional .env) and passed down explicitly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


class Settings(BaseSettings):
    """Every setting is an environment variable of the same name in upper case.

    Secrets are ``SecretStr`` so they print as ``**********`` in logs, reprs and errors.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///incident-bot.db"
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None
    incident_channel: str = "#incidents"
    alert_webhook_token: SecretStr | None = None
    runbooks_dir: Path | None = None
    action_base_url: str | None = Field(
        default=None, description="Base URL that relative runbook action URLs (/actions/...) are joined to."
    )
    executor_hmac_secret: SecretStr | None = None
    executor_timeout_seconds: float = 10.0
    group_window_minutes: int = 30
    embedding_model_path: str | None = None
    embedding_backend: str = "torch"
    similar_top_k: int = 3
    model_owners: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Who may approve as `model-owner`, per model: JSON, e.g. {"fraud-model": ["U0MLOWNER"]}. '
        "Never taken from alert payloads.",
    )
    change_window_minutes: int = 60
    flap_window_minutes: int = 30
    flap_threshold: int = 2
    dedup_window_minutes: int = 60
    reopen_grace_minutes: int = 10
    correlation_window_minutes: int = 60
    model_services: dict[str, str] = Field(
        default_factory=dict,
        description='The service that serves each model: JSON, e.g. {"fraud-model": "fraud-scoring"}.',
    )
    log_level: str = "INFO"
    # Remediation executors (bot/remediation/executors): MLflow alias rollback and Kubernetes Deployments.
    mlflow_tracking_uri: str | None = None
    mlflow_tracking_token: SecretStr | None = None
    k8s_api_url: str | None = None
    k8s_token: SecretStr | None = None
    k8s_ca_cert: Path | None = None
    k8s_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces the Kubernetes executors may touch: JSON list or comma separated. Empty: none.",
    )
    k8s_verify_tls: bool = True

    @field_validator("k8s_namespaces", mode="before")
    @classmethod
    def _namespaces(cls, value: Any) -> Any:
        # JSON list ("[\"shop\", \"ml\"]") or comma separated ("shop,ml"), from the environment or code.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    pagerduty_webhook_secret: SecretStr | None = None
    generic_field_map: dict[str, str] = Field(
        default_factory=dict,
        description="Where /alerts/generic finds its fields in a foreign JSON body, JSONPath-like: "
        '{"name": "$.rule.title", "service": "$.tags.service"}. Empty: the generic format as documented.',
    )
    policy_path: Path | None = Field(
        default=None, description="policy.yml: who may approve which action, N-of-M, TTL, scope, rate limit."
    )
    log_format: str = Field(default="text", description="`text` or `json` (one JSON object per line)")
    slack_timeout_seconds: float = 10.0
    slack_update_interval_seconds: float = Field(
        default=3.0, description="At most one chat.update per incident message per this many seconds"
    )
    outbox_workers: int = 2
    http_body_timeout_seconds: float = Field(
        default=10.0,
        description="A request body must arrive within this many seconds, else 408 (slow clients); 0 = off",
    )
    outbox_lease_seconds: float = Field(
        default=120.0,
        description="How long a claimed Slack message is reserved before another replica may retry it",
    )
    # KPI jobs (bot/reports/reminders.py): a 0 or an empty schedule turns a job off
    digest_schedule: str = Field(
        default="mon 09:00", description='weekly digest, "<day> HH:MM" UTC; "" = off'
    )
    digest_stale_hours: int = 24
    ack_reminder_minutes: int = 15
    ack_escalation_minutes: int = 30
    oncall_mention: list[str] = Field(
        default_factory=list, description="Slack user group (S...) / user ids, JSON list"
    )
    escalation_mention: list[str] = Field(default_factory=list)
    rca_reminder_hours: int = 24


def secret_value(secret: SecretStr | None) -> str | None:
    """The secret, or None when unset or empty: ``ALERT_WEBHOOK_TOKEN=`` must not make an empty bearer token
    (or an empty signing key) a valid credential."""
    value = secret.get_secret_value() if secret is not None else ""
    return value or None
