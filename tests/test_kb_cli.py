"""The ``kb`` CLI through its own ArgumentParser, on SQLite with the hashing encoder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bot.advice.knowledge import KnowledgeBase
from bot.kernel.config import Settings
from bot.kernel.db import make_engine, make_sessionmaker
from incident_bot.cli.kb import register
from retrieval.encoder import HashingEncoder

FIXTURES = Path(__file__).parent / "fixtures" / "kb"


@pytest.fixture
def run(sqlite_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)

    def build() -> KnowledgeBase:  # a fresh KnowledgeBase per command, like separate CLI runs
        return KnowledgeBase(sessions=sessions, encoder=HashingEncoder())

    parser = argparse.ArgumentParser(prog="incident-bot")
    register(
        parser.add_subparsers(dest="command", required=True),
        build,
        lambda: Settings(_env_file=None, database_url=sqlite_url),
    )

    def _run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return int(args.func(args))

    yield _run
    engine.dispose()


def test_import_then_reimport_then_search_json(run, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert run("kb", "import", str(FIXTURES / "incidents.jsonl")) == 0
    assert "inserted 5, updated 0, unchanged 0, skipped 0" in capsys.readouterr().out
    assert run("kb", "import", str(FIXTURES / "incidents.jsonl"), "--no-progress") == 0
    assert "inserted 0, updated 0, unchanged 5, skipped 0" in capsys.readouterr().out
    assert run("kb", "search", "kafka broker disk full retention", "--json", "--top", "2") == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 2
    # the contract's keys, plus which embedding model answered (issue 19: extended, nothing renamed)
    assert all(set(item) == {"id", "title", "score", "why", "model"} for item in out)
    assert {item["model"] for item in out} == {"bundled"}
    assert out[0]["id"] == "KB-3"
    assert out[0]["score"] >= out[1]["score"]
    assert isinstance(out[0]["why"], list) and any("kafka" in w for w in out[0]["why"])


def test_search_table_and_service_preference(run, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    run("kb", "import", str(FIXTURES / "incidents.jsonl"), "--no-progress")
    capsys.readouterr()
    assert run("kb", "search", "rolled back", "--service", "fraud", "--top", "3") == 0
    out = capsys.readouterr().out
    assert out.startswith("1. KB-4")
    assert "same service fraud" in out


def test_bad_rows_reported_with_line_numbers(run, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert run("kb", "import", str(FIXTURES / "bad_rows.jsonl"), "--no-progress") == 0
    cap = capsys.readouterr()
    assert "inserted 2, updated 0, unchanged 0, skipped 3" in cap.out
    assert "line 2: missing 'id'" in cap.err
    assert "line 3: invalid JSON" in cap.err
    assert "line 4: unreadable date 'yesterday-ish'" in cap.err


def test_csv_with_map_quoted_column_with_space(
    run, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "hadoop.csv"
    src.write_text(
        'Issue id,Summary,Long Description\n77,"NameNode heap","GC pauses 40 s"\n', encoding="utf-8"
    )
    code = run(
        "kb",
        "import",
        str(src),
        "--format",
        "csv",
        "--map",
        'id="Issue id",title=Summary,text="Long Description"',
    )
    assert code == 0
    assert "inserted 1" in capsys.readouterr().out
    run("kb", "search", "namenode gc pauses", "--json")
    top = json.loads(capsys.readouterr().out)[0]
    assert (top["id"], top["title"]) == ("77", "NameNode heap")
    assert any("namenode" in w for w in top["why"])


def test_mapped_csv_fixture_bad_row(run, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    code = run(
        "kb",
        "import",
        str(FIXTURES / "mapped.csv"),
        "--map",
        'id="Issue id",title=Summary,text=Description,service=Component',
        "--no-progress",
    )
    assert code == 0
    cap = capsys.readouterr()
    assert "inserted 2" in cap.out and "skipped 1" in cap.out
    assert "line 5: missing 'id'" in cap.err  # the first record spans lines 2-3


@pytest.mark.parametrize("content", ["", "   \n", "not,a\n"])
def test_unreadable_or_all_bad_file_exits_1(
    run, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "x.jsonl"
    src.write_text(content, encoding="utf-8")
    assert run("kb", "import", str(src), "--no-progress") == 1


def test_missing_file_and_bad_map(run, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("kb", "import", str(tmp_path / "nope.jsonl")) == 1
    assert "cannot read" in capsys.readouterr().err
    assert run("kb", "import", str(FIXTURES / "incidents.jsonl"), "--map", "colour=Red") == 2
    assert "unknown field 'colour'" in capsys.readouterr().err


def test_stats(run, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    run("kb", "import", str(FIXTURES / "incidents.jsonl"), "--no-progress")
    capsys.readouterr()
    assert run("kb", "stats") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] == 5 and stats["chunks"] >= 5 and stats["backend"] == "numpy"


def test_refit_without_feedback_says_so(run, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert run("kb", "refit") == 1
    assert "not enough feedback yet" in capsys.readouterr().out


def test_reimport_with_bad_rows_still_succeeds(run, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert run("kb", "import", str(FIXTURES / "bad_rows.jsonl"), "--no-progress") == 0
    assert run("kb", "import", str(FIXTURES / "bad_rows.jsonl"), "--no-progress") == 0
    assert "inserted 0, updated 0, unchanged 2, skipped 3" in capsys.readouterr().out
