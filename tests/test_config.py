import logging

import pytest

from bot.kernel.config import Settings


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).database_url == "sqlite:///incident-bot.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    s = Settings(_env_file=None)
    assert s.database_url == "postgresql://u@h/db"
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == "xoxb-very-secret"


def test_secrets_never_render(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for key, value in {
        "SLACK_BOT_TOKEN": "xoxb-leak-1",
        "SLACK_SIGNING_SECRET": "leak-2",
        "ALERT_WEBHOOK_TOKEN": "leak-3",
        "EXECUTOR_HMAC_SECRET": "leak-4",
        "SLACK_APP_TOKEN": "xapp-leak-5",
    }.items():
        monkeypatch.setenv(key, value)
    s = Settings(_env_file=None)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s %r", s, s)
    rendered = str(s) + repr(s) + s.model_dump_json() + caplog.text
    assert "leak" not in rendered


def test_build_runtime_without_slack_credentials_says_what_to_set(sqlite_url: str, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from bot.kernel.errors import ConfigError
    from incident_bot.runtime import build_runtime

    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        build_runtime(Settings(_env_file=None, database_url=sqlite_url), encoder=fake_encoder)


def test_socket_mode_takes_slack_off_http_but_keeps_alert_endpoints(sqlite_url: str, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from bot.kernel.config import SAMPLE_DATA
    from incident_bot.runtime import build_runtime

    settings = Settings(
        _env_file=None,
        database_url=sqlite_url,
        slack_bot_token="xoxb-t",
        slack_signing_secret="s",
        slack_app_token="xapp-t",
        alert_webhook_token="tok",
        slack_api_url="http://127.0.0.1:9/api/",
    )
    rt = build_runtime(settings, encoder=fake_encoder)
    try:
        with TestClient(rt.http) as client:
            assert client.post("/slack/events", content=b"{}").status_code == 404
            assert client.get("/healthz").json()["slack"] == "socket-mode"
            body = (SAMPLE_DATA / "alerts" / "generic.json").read_bytes()
            resp = client.post("/alerts/generic", content=body, headers={"Authorization": "Bearer tok"})
            assert resp.status_code == 202 and resp.json()["incidents_created"] == [1]
    finally:
        rt.close()
