from pathlib import Path

import pytest

from bot.demo import run_demo


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
    assert "POST /actions/mlflow-rollback" in out and "Approvals: 1 of 2 (@U0MLOWNER)" in out  # preview; two-person approval
    assert out.count("signature_ok=True") >= 1 and "remediation.approval" in out
    assert "deliveries → 3 alerts → 2 incidents" in out and "MTTR" in out  # the /incident kpi summary
    saved = out.split("saved as ")[-1].split()[0]
    assert Path(saved).read_bytes().startswith(b"\x89PNG")
