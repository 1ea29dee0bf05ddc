"""Runbook ranking: rules and passage similarity, each with the reason that earned it."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.encoder import HashingEncoder
from retrieval.runbook_rank import RunbookIndex, rank_runbooks
from retrieval.runbooks import Runbook, load_runbooks
from retrieval.types import Query

SAMPLE_RUNBOOKS = Path(__file__).resolve().parent.parent / "bot" / "sample_data" / "runbooks"


def _books() -> list[Runbook]:
    return [
        Runbook(
            id="pool",
            title="Database connection pool exhausted",
            services=["checkout"],
            alert_names=["PostgresConnectionPoolExhausted"],
            labels={"team": "payments"},
            steps=[
                "Check pgbouncer SHOW POOLS for waiting clients",
                "Roll back a deploy that changed pool_size",
            ],
        ),
        Runbook(
            id="disk",
            title="Disk almost full",
            alert_names=["NodeDiskFull"],
            steps=["Find the biggest directories with du", "Lower log retention or grow the volume"],
        ),
        Runbook(
            id="drift",
            title="Model drift rollback",
            models=["fraud-scorer"],
            steps=["Compare feature distributions", "Roll back to the previous model version"],
        ),
    ]


def test_rule_match_is_named() -> None:
    out = rank_runbooks(
        Query(
            text="",
            alert_name="PostgresConnectionPoolExhausted",
            service="checkout",
            labels={"team": "payments"},
        ),
        _books(),
        HashingEncoder(),
    )
    assert out[0].runbook.id == "pool" and out[0].specific
    assert "rule: alert name PostgresConnectionPoolExhausted" in out[0].why
    assert "rule: service checkout" in out[0].why
    assert "rule: labels team=payments" in out[0].why


def test_alert_names_decide_services_and_labels_narrow() -> None:
    books = _books()
    named_elsewhere = rank_runbooks(  # the runbook names the alert, but not for this service: no rule match
        Query(
            text="",
            alert_name="PostgresConnectionPoolExhausted",
            service="payments",
            labels={"team": "payments"},
        ),
        books,
        HashingEncoder(),
    )
    assert all(m.runbook.id != "pool" or not m.rule for m in named_elsewhere)
    general = (
        rank_runbooks(  # the PaymentsWebhookQueueStuck: service and labels agree, alert not named
            Query(
                text="",
                alert_name="PaymentsWebhookQueueStuck",
                service="checkout",
                labels={"team": "payments"},
            ),
            books,
            HashingEncoder(),
        )
    )
    pool = next(m for m in general if m.runbook.id == "pool")
    assert pool.rule and not pool.specific and pool.by_service
    assert any("for reading" in w for w in pool.why)
    model = rank_runbooks(Query(text="", model="fraud-scorer"), books, HashingEncoder())
    assert model[0].runbook.id == "drift" and model[0].specific


def test_text_match_names_the_passage() -> None:
    out = rank_runbooks(Query(text="lower log retention or grow the volume"), _books(), HashingEncoder())
    assert out[0].runbook.id == "disk"
    assert out[0].why == ['text: "Lower log retention or grow the volume" (semantic 1.00)']


def test_rules_and_text_add_up_and_unrelated_runbooks_are_left_out() -> None:
    q = Query(text="roll back to the previous model version", model="fraud-scorer")
    out = rank_runbooks(q, _books(), HashingEncoder(), top_k=3)
    assert out[0].runbook.id == "drift"
    assert out[0].why[0] == "rule: model fraud-scorer" and out[0].why[1].startswith(
        'text: "Roll back to the previous'
    )
    assert "disk" not in [m.runbook.id for m in out]  # no rule and no similar text


def test_excluded_runbooks_and_cache_reuse() -> None:
    class Counting(HashingEncoder):
        calls = 0

        def encode(self, texts, *, batch_size=64, show_progress=False):  # type: ignore[no-untyped-def]
            Counting.calls += 1
            return super().encode(texts)

    idx = RunbookIndex(Counting())
    books = _books()
    q = Query(text="disk full grow the volume", exclude_ids=frozenset({"disk"}))
    assert "disk" not in [m.runbook.id for m in idx.rank(q, books)]
    calls = Counting.calls
    idx.rank(Query(text="pgbouncer pool"), books)
    assert Counting.calls == calls + 1  # only the query is encoded again; passages are cached


@pytest.mark.slow
def test_real_model_finds_runbook_from_wording_alone(real_encoder) -> None:  # type: ignore[no-untyped-def]
    books, errors = load_runbooks(SAMPLE_RUNBOOKS)
    assert not errors
    out = rank_runbooks(
        Query(text="consumers on the orders topic are falling further and further behind"),
        books,
        real_encoder,
    )
    assert out[0].runbook.id == "kafka-consumer-lag"
    assert out[0].why[0].startswith("text: ")
