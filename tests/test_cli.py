"""The CLI as a user runs it: DATABASE_URL from the environment, exit codes, printed output."""

from pathlib import Path

import pytest

from bot.kernel.config import SAMPLE_DATA
from incident_bot.cli.main import main


def test_db_upgrade_then_runbooks_import_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["db", "upgrade"]) == 0
    assert main(["runbooks", "import", str(SAMPLE_DATA / "runbooks")]) == 0
    cap = capsys.readouterr()
    n = len(list((SAMPLE_DATA / "runbooks").glob("*.md")))
    assert f"{n} inserted" in cap.out and "0 skipped" in cap.out
    # the bundled model rollback is an mlflow_rollback: imported, and the warning names the setting
    assert (
        "model-drift-rollback.md: actions[0].type: action type 'mlflow_rollback' needs MLFLOW_TRACKING_URI; "
        "imported, not offered until it is set"
    ) in cap.err
    assert main(["runbooks", "import", str(SAMPLE_DATA / "runbooks")]) == 0
    assert f"{n} unchanged" in capsys.readouterr().out
    assert main(["runbooks", "list"]) == 0
    listing = capsys.readouterr().out
    assert "db-connection-pool" in listing and "model-drift-rollback" in listing


def test_runbooks_import_reports_bad_file_and_keeps_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    d = tmp_path / "rb"
    d.mkdir()
    (d / "good.md").write_text("---\nid: good\ntitle: Good one\nsteps: [check it]\n---\nbody\n")
    (d / "bad.md").write_text("---\nid: bad\ntitle: [unclosed\n---\n")
    (d / "noaction.md").write_text("---\nid: na\ntitle: T\nactions:\n  - id: x\n    title: X\n---\n")
    assert main(["runbooks", "import", str(d)]) == 1  # a skipped runbook fails the import (CI, deploys)
    cap = capsys.readouterr()
    assert "1 inserted" in cap.out and "2 skipped" in cap.out
    assert "error: 2 runbook(s) skipped" in cap.err
    assert "invalid YAML" in cap.err and "noaction.md: actions[0].params.url: Field required" in cap.err


def test_runbooks_import_missing_dir_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["runbooks", "import", str(tmp_path / "nope")]) == 1
    assert "not found" in capsys.readouterr().err


def test_serve_without_slack_credentials_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["serve"]) == 2
    assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err
