"""Settings, read once from the environment (and an optional .env) and passed down explicitly."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SAMPLE_DATA = Path(__file__).parent / "sample_data"


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
    log_level: str = "INFO"
    # KPI jobs (bot/jobs.py): a 0 or an empty schedule turns a job off
    digest_schedule: str = Field(default="mon 09:00", description='weekly digest, "<day> HH:MM" UTC; "" = off')
    digest_stale_hours: int = 24
    ack_reminder_minutes: int = 15
    ack_escalation_minutes: int = 30
    oncall_mention: list[str] = Field(default_factory=list, description='Slack user group (S...) / user ids, JSON list')
    escalation_mention: list[str] = Field(default_factory=list)
    rca_reminder_hours: int = 24

    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None


def secret_value(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
