"""The triage part of the incident message: changes before it, links, grouping reason, flapping,
truncated alerts, re-open note; all escaped, all tested as data."""

from __future__ import annotations

import json

from bot.advice.context import ChangeNote, IncidentContext, LinkNote
from bot.triage.correlation import AFFECTING, CAUSED_BY
from handlers.blocks import incident as incident_blocks
from tests.test_blocks import EVIL, make_alert, make_incident


def _text(incident, context=None) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(
        incident_blocks.incident_message(incident, [make_alert()], [], None, context=context),
        ensure_ascii=False,
    )


def test_changes_links_and_triage_facts_are_rendered_and_escaped() -> None:
    inc = make_incident(
        flapping=True,
        truncated_alerts=3,
        grouping_reason=f"grouped: same template <{EVIL}>",
        triage_note=f"re-opened: still firing {EVIL}",
    )
    ctx = IncidentContext(
        changes=[
            ChangeNote(
                f"started 4 min after deploy checkout v1.42 by @ana {EVIL}", "https://ci.example.com/42"
            ),
            ChangeNote("started 9 min after config checkout", "javascript:alert(1)"),
        ],
        links=[
            LinkNote(CAUSED_BY, 12, "latency", "fraud-scoring", None, "open"),
            LinkNote(AFFECTING, 13, f"drift {EVIL}", None, "fraud-model", "open"),
        ],
    )
    text = _text(inc, ctx)
    assert "<https://ci.example.com/42|started 4 min after deploy checkout v1.42 by @ana" in text
    assert "started 9 min after config checkout" in text and "javascript:" not in text
    assert "may be caused by #12 latency on fraud-scoring" in text
    assert "may be affecting model fraud-model (#13 drift" in text
    assert "🔁 flapping" in text and "3 more alerts in this group were left out" in text
    assert "re-opened: still firing" in text and "grouped: same template &lt;" in text
    for raw in ("<!channel>", "<@U999>", "<https://evil.example", "<!here"):
        assert raw not in text


def test_no_triage_section_without_facts() -> None:
    assert "🧩" not in _text(make_incident()) and "🚀" not in _text(make_incident(), IncidentContext())
