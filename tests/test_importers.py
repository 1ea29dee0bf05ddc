"""Importers: every format maps to the same document; bad rows carry their line numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrieval.importers import SourceError, iter_documents, parse_datetime, parse_mapping
from retrieval.importers.sources import sniff
from retrieval.types import Document

FIXTURES = Path(__file__).parent / "fixtures" / "kb"


def _split(path: Path, fmt: str = "auto") -> tuple[dict[str, Document], list[tuple[int, str]]]:
    docs: dict[str, Document] = {}
    errors: list[tuple[int, str]] = []
    for line, doc, err in iter_documents(path, fmt=fmt):
        if doc is not None:
            docs[doc.id] = doc
        else:
            errors.append((line, err or ""))
    return docs, errors


def test_jsonl_generic_fields_and_meta() -> None:
    docs, errors = _split(FIXTURES / "incidents.jsonl")
    assert not errors
    d = docs["KB-1"]
    assert d.service == "checkout" and d.resolution == "Rolled back checkout v2.3"
    assert d.created_at == datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
    assert d.meta["alert_name"] == "PostgresConnectionPoolExhausted"
    assert docs["KB-4"].meta["model"] == "fraud-scorer"


def test_jira_csv_export() -> None:
    path = FIXTURES / "jira_export.csv"
    assert sniff(path, path.read_text()) == "jira"
    docs, errors = _split(path)
    assert set(docs) == {"OPS-101", "OPS-102"}
    d = docs["OPS-101"]
    assert d.title == "Checkout pods OOMKilled after cache size change"
    assert d.service == "checkout"
    assert "GiB in config" in d.text and "Lowered the cache to 512 MiB" in d.text  # description + comments
    assert "jdoe" not in d.text  # comment author/date prefix stripped
    assert d.created_at == datetime(2026, 3, 12, 9, 15, tzinfo=UTC)
    assert d.meta["jira_resolution"] == "Fixed"
    assert errors == [(5, "needs a 'title' or a 'text'"), (6, "unreadable date 'the second tuesday'")]


@pytest.mark.parametrize("name", ["servicenow_export.csv", "servicenow_export.json"])
def test_servicenow_exports(name: str) -> None:
    path = FIXTURES / name
    assert sniff(path, path.read_text()) == "servicenow"
    docs, errors = _split(path)
    assert len(errors) == 1
    if name.endswith(".csv"):
        d = docs["INC0010002"]
        assert (d.title, d.service) == ("VPN login failures", "VPN")
        assert d.root_cause == "Shared secret rotated only on one side"
        assert d.resolution == "Reverted the RADIUS shared secret"
        assert d.created_at == datetime(2026, 2, 11, 9, 0, tzinfo=UTC)
        assert errors == [(4, "missing 'id'")]
    else:
        d = docs["INC0020001"]
        assert d.service == "Payroll"  # display_value of a reference field
        assert d.resolution.startswith("Re-ran the batch")  # type: ignore[union-attr]
        assert errors[0][0] == 11 and "unreadable date" in errors[0][1]  # line the bad record starts on


def test_pagerduty_incidents_with_notes() -> None:
    path = FIXTURES / "pagerduty_incidents.json"
    assert sniff(path, path.read_text()) == "pagerduty"
    docs, errors = _split(path)
    d = docs["Q1ABCDEF"]
    assert d.service == "checkout"
    assert d.root_cause == "a feature flag enabled a code path that called a removed endpoint"
    assert d.resolution == "rolled back to v3.1 and disabled the flag"
    assert "Errors started right after the v3.2 rollout." in d.text
    assert d.url == "https://example.pagerduty.test/incidents/Q1ABCDEF"
    assert docs["Q2GHIJKL"].service == "logging"
    assert [line for line, _ in errors] == [29, 34]
    assert errors[0][1] == "missing 'id'" and "'notes' must be a list" in errors[1][1]


def test_parse_mapping_quotes_and_errors() -> None:
    assert parse_mapping('text=Description,title=Summary,id="Issue id"') == {
        "text": "Description",
        "title": "Summary",
        "id": "Issue id",
    }
    assert parse_mapping("id='Ticket, number' , title = Short text") == {
        "id": "Ticket, number",
        "title": "Short text",
    }
    with pytest.raises(ValueError, match="unknown field"):
        parse_mapping("colour=Red")
    with pytest.raises(ValueError, match="needs a column"):
        parse_mapping("id=")


def test_parse_datetime_formats_are_aware_utc() -> None:
    assert parse_datetime("2026-01-10T12:00:00+02:00") == datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
    assert parse_datetime("30/Sep/21 17:20") == datetime(2021, 9, 30, 17, 20, tzinfo=UTC)
    assert parse_datetime(1767225600) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_datetime("") is None


def test_unreadable_files_raise(tmp_path: Path) -> None:
    empty = tmp_path / "e.json"
    empty.write_text("  ")
    with pytest.raises(SourceError, match="empty"):
        list(iter_documents(empty))
    broken = tmp_path / "b.json"
    broken.write_text('{"incidents": [ {"id": 1,, } ]}')
    with pytest.raises(SourceError, match="invalid JSON at line 1"):
        list(iter_documents(broken, fmt="pagerduty"))
    with pytest.raises(SourceError, match="unknown format"):
        list(iter_documents(broken, fmt="xml"))


def test_csv_row_with_too_many_columns(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("id,title,text\n1,a,b\n2,a,b,EXTRA\n3,c,d\n", encoding="utf-8")
    docs, errors = _split(p)
    assert set(docs) == {"1", "3"}
    assert errors == [(3, "4 columns but the header has 3")]
