"""`incident-bot doctor` runs the validation `serve` runs (issue 17): settings (one line per bad value), policy.yml
(fields, types, action ids some runbook has), runbooks, placeholders left from .env.example, and a warning when
reminders would mention nobody. Every other command reports a bad setting the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kernel.config import SAMPLE_DATA
from incident_bot.cli.main import main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'doctor.db'}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-real-looking")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")  # nothing listens: Slack unreachable, fast
    monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", "tok")
    monkeypatch.setenv("ONCALL_MENTION", "S0ONCALL")
    monkeypatch.setenv("RUNBOOKS_DIR", str(SAMPLE_DATA / "runbooks"))
    return tmp_path


def _doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["doctor", "--skip-model"])
    return code, capsys.readouterr().out.splitlines()


def _row(lines: list[str], name: str) -> str:
    found = [line for line in lines if line.split()[1:2] == [name]]
    assert found, f"no {name!r} row in:\n" + "\n".join(lines)
    return found[0]


def test_sample_policy_and_runbooks_pass(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLICY_PATH", str(SAMPLE_DATA / "policy.yml"))
    _, lines = _doctor(capsys)
    assert _row(lines, "policy").startswith("OK") and "2 actions, 1 types" in _row(lines, "policy")
    assert _row(lines, "runbooks").startswith("OK")
    assert not any(line.startswith("WARN  reminders") for line in lines)


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        (None, "policy file not found"),
        ("defaults: [unclosed\n", "invalid YAML"),
        ("defaults:\n  approvals_required: many\n", "defaults.approvals_required"),
        ("types:\n  teleport: {}\n", "types.teleport: unknown action type"),
        (
            "actions:\n  restart-pgbouncr:\n    ttl_minutes: 5\n",
            "actions.restart-pgbouncr: no runbook has an action",
        ),
    ],
)
def test_missing_broken_or_misspelt_policy_fails_doctor_and_serve(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    policy: str | None,
    error: str,
) -> None:
    path = env / "policy.yml"
    if policy is not None:
        path.write_text(policy, encoding="utf-8")
    monkeypatch.setenv("POLICY_PATH", str(path))
    code, lines = _doctor(capsys)
    assert code == 1 and _row(lines, "policy").startswith("FAIL") and error in _row(lines, "policy")
    assert main(["serve"]) == 2  # the same check stops serve, before it binds a port
    assert error in capsys.readouterr().err


def test_known_action_id_from_the_database_is_accepted(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runbooks imported earlier with `incident-bot runbooks import` count too, not only RUNBOOKS_DIR."""
    monkeypatch.delenv("RUNBOOKS_DIR")
    (env / "policy.yml").write_text("actions:\n  restart-pgbouncer:\n    ttl_minutes: 5\n", encoding="utf-8")
    monkeypatch.setenv("POLICY_PATH", str(env / "policy.yml"))
    assert _row(_doctor(capsys)[1], "policy").startswith("FAIL")
    assert main(["runbooks", "import", "--samples"]) == 0
    capsys.readouterr()
    assert _row(_doctor(capsys)[1], "policy").startswith("OK")


def test_placeholders_from_env_example_fail(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-...")
    monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", "change-me-long-random")
    monkeypatch.setenv("INCIDENT_CHANNEL", "C0123456789")
    code, lines = _doctor(capsys)
    flagged = [line for line in lines if " placeholder " in line]
    assert code == 1 and len(flagged) == 3 and all(line.startswith("FAIL") for line in flagged)
    assert "xoxb" not in "\n".join(flagged)  # a secret's value is never printed, even a placeholder
    assert main(["serve"]) == 2
    assert "SLACK_BOT_TOKEN: its value is the example from .env.example" in capsys.readouterr().err


def test_reminders_without_oncall_mention_warn(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ONCALL_MENTION")
    row = _row(_doctor(capsys)[1], "reminders")
    assert row.startswith("WARN") and "ONCALL_MENTION" in row and "skipped" in row
    monkeypatch.setenv("ACK_REMINDER_MINUTES", "0")
    monkeypatch.setenv("ACK_ESCALATION_MINUTES", "0")
    assert not any(" reminders " in line for line in _doctor(capsys)[1])


def test_bad_values_one_line_each_in_doctor_serve_and_every_command(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_TIMEOUT_SECONDS", "soon")
    monkeypatch.setenv("OUTBOX_LEASE_SECONDS", "0")
    code, lines = _doctor(capsys)
    assert code == 1 and lines == [
        "FAIL  settings  SLACK_TIMEOUT_SECONDS='soon': not a number; e.g. SLACK_TIMEOUT_SECONDS=0.5",
        "FAIL  settings  OUTBOX_LEASE_SECONDS='0': must be > 0; e.g. OUTBOX_LEASE_SECONDS=120",
    ]
    commands = (["serve"], ["noise"], ["kpi"], ["db", "upgrade"], ["runbooks", "list"], ["actions", "freeze"])
    for argv in (*commands, ["audit", "export"], ["kb", "search", "pool exhausted"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.splitlines()
        assert err == [
            "error: SLACK_TIMEOUT_SECONDS='soon': not a number; e.g. SLACK_TIMEOUT_SECONDS=0.5",
            "error: OUTBOX_LEASE_SECONDS='0': must be > 0; e.g. OUTBOX_LEASE_SECONDS=120",
        ], argv


def test_a_generic_field_map_serve_cannot_use_fails_doctor_too(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GENERIC_FIELD_MAP", "name=rule.title")
    code, lines = _doctor(capsys)
    row = next(line for line in lines if "alert sources" in line)
    assert code == 1 and row.startswith("FAIL") and "path 'rule.title' must start with '$'" in row
    assert main(["serve"]) == 2
    assert "GENERIC_FIELD_MAP: path 'rule.title' must start with '$'" in capsys.readouterr().err
