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


# ---- issue 17: one syntax, real types, bounds, one line per bad value ------------------------------------
from bot.kernel.config import load_settings  # noqa: E402
from bot.kernel.errors import ConfigError  # noqa: E402


def _env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return load_settings(_env_file=None)


def test_fractions_stay_fractions(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _env(
        monkeypatch, SLACK_TIMEOUT_SECONDS="0.5", OUTBOX_LEASE_SECONDS="2.5", EXECUTOR_TIMEOUT_SECONDS="1.5"
    )
    assert (s.slack_timeout_seconds, s.outbox_lease_seconds, s.executor_timeout_seconds) == (0.5, 2.5, 1.5)


def test_slack_client_gets_the_fractional_timeout(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, fake_encoder
) -> None:  # type: ignore[no-untyped-def]
    from incident_bot.runtime import build_runtime

    s = Settings(
        _env_file=None,
        database_url=sqlite_url,
        slack_bot_token="xoxb-t",
        slack_signing_secret="s",
        slack_timeout_seconds=0.5,
    )
    rt = build_runtime(s, encoder=fake_encoder)
    try:
        assert rt.bolt.client.timeout == 0.5  # the one WebClient; not int(0.5) == 0, which failed every call
    finally:
        rt.close()


@pytest.mark.parametrize(
    ("name", "comma", "json_text", "expected"),
    [
        ("ONCALL_MENTION", "U1,U2", '["U1", "U2"]', ["U1", "U2"]),
        ("ESCALATION_MENTION", " S0SRE , U0LEAD ", '["S0SRE","U0LEAD"]', ["S0SRE", "U0LEAD"]),
        ("K8S_NAMESPACES", "shop,ml", '["shop", "ml"]', ["shop", "ml"]),
        (
            "MODEL_OWNERS",
            "fraud=U0A,fraud=U0B,recsys=U0C",
            '{"fraud": ["U0A", "U0B"], "recsys": ["U0C"]}',
            {"fraud": ["U0A", "U0B"], "recsys": ["U0C"]},
        ),
        (
            "MODEL_SERVICES",
            "fraud-model=fraud-scoring",
            '{"fraud-model": "fraud-scoring"}',
            {"fraud-model": "fraud-scoring"},
        ),
        (
            "GENERIC_FIELD_MAP",
            "name=$.rule.title,service=$.tags.service",
            '{"name": "$.rule.title", "service": "$.tags.service"}',
            {"name": "$.rule.title", "service": "$.tags.service"},
        ),
    ],
)
def test_lists_and_maps_take_commas_or_json(
    monkeypatch: pytest.MonkeyPatch, name: str, comma: str, json_text: str, expected: object
) -> None:
    assert getattr(_env(monkeypatch, **{name: comma}), name.lower()) == expected
    assert getattr(_env(monkeypatch, **{name: json_text}), name.lower()) == expected
    assert getattr(_env(monkeypatch, **{name: ""}), name.lower()) in ([], {})


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        (
            "SLACK_TIMEOUT_SECONDS",
            "soon",
            "SLACK_TIMEOUT_SECONDS='soon': not a number; e.g. SLACK_TIMEOUT_SECONDS=0.5",
        ),
        (
            "SLACK_TIMEOUT_SECONDS",
            "0",
            "SLACK_TIMEOUT_SECONDS='0': must be > 0; e.g. SLACK_TIMEOUT_SECONDS=0.5",
        ),
        ("OUTBOX_LEASE_SECONDS", "0", "OUTBOX_LEASE_SECONDS='0': must be > 0; e.g. OUTBOX_LEASE_SECONDS=120"),
        (
            "GROUP_WINDOW_MINUTES",
            "-5",
            "GROUP_WINDOW_MINUTES='-5': must be >= 0; e.g. GROUP_WINDOW_MINUTES=30",
        ),
        ("FLAP_WINDOW_MINUTES", "-1", "FLAP_WINDOW_MINUTES='-1': must be >= 0; e.g. FLAP_WINDOW_MINUTES=30"),
        (
            "ACK_REMINDER_MINUTES",
            "-15",
            "ACK_REMINDER_MINUTES='-15': must be >= 0; e.g. ACK_REMINDER_MINUTES=15",
        ),
        ("OUTBOX_WORKERS", "0", "OUTBOX_WORKERS='0': must be >= 1; e.g. OUTBOX_WORKERS=2"),
        (
            "GROUP_WINDOW_MINUTES",
            "1.5",
            "GROUP_WINDOW_MINUTES='1.5': not a whole number; e.g. GROUP_WINDOW_MINUTES=30",
        ),
        (
            "MODEL_OWNERS",
            "notjson",
            "MODEL_OWNERS='notjson': 'notjson' is not key=value; "
            "e.g. MODEL_OWNERS=fraud-model=U0MLOWNER,fraud-model=U0MLLEAD",
        ),
        (
            "MODEL_OWNERS",
            "{bad",
            "MODEL_OWNERS='{bad': not valid JSON (Expecting property name enclosed in double "
            "quotes at character 2); e.g. MODEL_OWNERS=fraud-model=U0MLOWNER,fraud-model=U0MLLEAD",
        ),
        (
            "ONCALL_MENTION",
            "@channel",
            "ONCALL_MENTION='@channel': '@channel' is not a Slack user group (S...) or "
            "user (U.../W...) id; e.g. ONCALL_MENTION=S0ONCALL,U0LEAD",
        ),
        ("K8S_VERIFY_TLS", "maybe", "K8S_VERIFY_TLS='maybe': not true or false; e.g. K8S_VERIFY_TLS=true"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT='xml': 'xml' is not text or json; e.g. LOG_FORMAT=text"),
        (
            "EMBEDDING_BACKEND",
            "gpu",
            "EMBEDDING_BACKEND='gpu': 'gpu' is not one of torch, onnx, onnx-int8; "
            "e.g. EMBEDDING_BACKEND=torch",
        ),
        (
            "DIGEST_SCHEDULE",
            "monday 9am",
            "DIGEST_SCHEDULE='monday 9am': 'monday 9am' is not \"<mon..sun> HH:MM\" "
            "(UTC) or empty; e.g. DIGEST_SCHEDULE=mon 09:00",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_an_example(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _env(monkeypatch, **{name: value})
    assert str(err.value) == line


def test_every_bad_value_gets_its_own_line_and_secrets_are_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError) as err:
        _env(monkeypatch, GROUP_WINDOW_MINUTES="-1", OUTBOX_LEASE_SECONDS="0", SLACK_TIMEOUT_SECONDS="x")
    lines = str(err.value).splitlines()
    assert sorted(line.split("=")[0] for line in lines) == [
        "GROUP_WINDOW_MINUTES",
        "OUTBOX_LEASE_SECONDS",
        "SLACK_TIMEOUT_SECONDS",
    ]
    assert all("pydantic" not in line and "validation error" not in line for line in lines)


def test_windows_and_switches_accept_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _env(
        monkeypatch,
        ACK_REMINDER_MINUTES="0",
        RCA_REMINDER_HOURS="0",
        GROUP_WINDOW_MINUTES="0",
        DIGEST_SCHEDULE="",
    )
    assert (s.ack_reminder_minutes, s.rca_reminder_hours, s.group_window_minutes, s.digest_schedule) == (
        0,
        0,
        0,
        "",
    )
