from pathlib import Path

import pytest

from incident_bot.demo.mlflow_local import mlflow_unavailable_reason
from incident_bot.demo.prometheus_local import prometheus_unavailable_reason
from incident_bot.demo.run import run_demo


@pytest.mark.slow
def test_demo_runs_the_whole_flow(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo() == 0
    out = capsys.readouterr().out
    assert "Similar past incidents" in out and "Suggested runbook: Database connection pool exhausted" in out
    assert "signature_ok=True" in out
    assert "someone else on the approver list" in out  # self-approval refused
    assert "already" in out  # the double click runs nothing more
    assert "webhook calls so far: 1" in out
    assert "remediation.succeeded" in out and "knowledge.learned" in out
    assert "incident-2" in out  # the RCA note is found by the next search
    assert "Approvals: 1 of 2 (@U0MLOWNER)" in out  # two-person approval
    if mlflow_unavailable_reason() is None:  # a real local MLflow: the alias really moves, v12 -> v11
        assert "MLflow before: fraud-model@champion is v12" in out
        assert "POST /api/2.0/mlflow/registered-models/alias" in out and "current: v12 (created" in out
        assert "MLflow after: fraud-model@champion is v11 (read back from the registry)" in out
    else:  # said why, and the rollback is the signed webhook
        assert (
            "MLflow: not started (mlflow is not installed" in out and "POST /actions/mlflow-rollback" in out
        )
    assert out.count("signature_ok=True") >= 1 and "remediation.approval" in out
    assert "deliveries → 3 alerts → 2 incidents" in out and "MTTR" in out  # the /incident kpi summary
    # the sample payloads are replayed as if the alert started minutes ago: no 10-day MTTD, nothing
    # "resolved before it was opened" because the files' endsAt lie in the past
    assert "0 resolved before opened" in out
    mttd = out.split("MTTD (impact start → detection) avg ")[1].split()[0]
    assert mttd.endswith(("s", "m")) and not mttd.endswith("h"), mttd
    cascade = out.split("13. A cascade across services")[1]  # issue 18: the probable origin, and only it
    assert "🧭 probable origin: #3 `postgres-main`, 2 hops upstream" in cascade
    assert "📡 probably affecting: #4 `payments`, 1 hop downstream" in cascade
    assert "#6 `recommendations`" not in cascade
    saved = out.split("saved as ")[-1].split()[0]
    assert Path(saved).read_bytes().startswith(b"\x89PNG")
    if (
        prometheus_unavailable_reason() is None
    ):  # the alert's own graph, from a local Prometheus, in the thread
        assert "1b. The alert's own graph in the thread" in out and "threshold > 0; incident started" in out
        assert "deploy checkout v1.38 at" in out and "No graph" not in out
        graph = out.split("graph: ")[1].split("saved as ")[1].split()[0]
        assert Path(graph).read_bytes().startswith(b"\x89PNG")
    else:
        assert "Prometheus: not started (/usr/bin/" in out


def test_without_mlflow_the_demo_says_why_and_keeps_the_webhook(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from contextlib import ExitStack

    from bot.kernel.config import SAMPLE_DATA
    from incident_bot.demo import run as demo

    monkeypatch.setattr(
        demo, "mlflow_unavailable_reason", lambda: "mlflow is not installed in this Python environment"
    )
    with ExitStack() as stack:
        uri, runbooks = demo._start_mlflow(stack, tmp_path)
    assert uri is None and runbooks == tmp_path / "runbooks"  # a copy of the bundled runbooks ...
    bundled = (SAMPLE_DATA / "runbooks" / "model-drift-rollback.md").read_text()
    copied = (runbooks / "model-drift-rollback.md").read_text()
    assert "type: mlflow_rollback" in bundled and "mlflow_rollback" not in copied  # ... rollback as a webhook
    assert "/actions/mlflow-rollback" in copied
    assert "MLflow: not started (mlflow is not installed" in capsys.readouterr().out


def test_sample_timestamps_are_moved_together_and_never_into_the_future() -> None:
    from datetime import UTC, datetime, timedelta

    from incident_bot.demo.run import SAMPLE_EPOCH, retime

    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    offset = now - timedelta(minutes=5) - SAMPLE_EPOCH
    body = (
        b'{"startsAt": "2026-11-22T03:12:00Z", "endsAt": "0001-01-01T00:00:00Z", '
        b'"later": "2026-11-22T03:14:30.123Z", "end": "2026-11-22T03:49:00Z"}'
    )
    out = retime(body, offset, now).decode()
    assert '"startsAt": "2030-01-01T11:55:00Z"' in out  # five minutes ago
    assert '"endsAt": "0001-01-01T00:00:00Z"' in out  # Alertmanager's "still firing" zero time untouched
    assert '"later": "2030-01-01T11:57:30Z"' in out  # the same offset for every timestamp
    assert '"end": "2030-01-01T12:00:00Z"' in out  # 37 minutes later would be in the future: capped at now


def test_without_prometheus_the_demo_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contextlib import ExitStack

    from incident_bot.demo import run as demo

    monkeypatch.setattr(
        demo, "prometheus_unavailable_reason", lambda: "/usr/bin/prometheus is not installed (Debian package)"
    )
    with ExitStack() as stack:
        assert demo._start_prometheus(stack, Path("/nonexistent")) is None
    out = capsys.readouterr().out
    assert out.strip() == (
        "Prometheus: not started (/usr/bin/prometheus is not installed (Debian package)); incidents get no graph"
    )
