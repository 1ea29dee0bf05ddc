"""The severity rank is written once (the order of ``Severity``'s members); sorting by it puts unknown
stored values after the four levels."""

from __future__ import annotations

from bot.intake.alerts import Severity


def test_rank_is_the_member_order_most_severe_first() -> None:
    assert [s.rank for s in (Severity.CRITICAL, Severity.HIGH, Severity.WARNING, Severity.INFO)] == [
        0,
        1,
        2,
        3,
    ]
    assert [Severity.rank_of(v) for v in ("critical", "high", "warning", "info")] == [0, 1, 2, 3]


def test_unknown_stored_values_sort_after_every_level() -> None:
    stored = ["bogus", "info", "critical", "", "warning", "high"]
    assert sorted(stored, key=lambda s: (Severity.rank_of(s), s)) == [
        "critical",
        "high",
        "warning",
        "info",
        "",
        "bogus",
    ]
