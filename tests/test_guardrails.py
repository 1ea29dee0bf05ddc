"""Guardrails: an action is offered only on a rule match or a strong text match, and only in scope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from bot.kernel.models import Incident, RemediationRequest, Suggestion
from bot.remediation.actions import ActionError, ActionSpec, validate_actions
from bot.remediation.base import ActionContext, ExecutionResult, Preview
from bot.remediation.guardrails import offerable, out_of_scope
from bot.remediation.policy import Rule
from incident_bot.demo.slack_stub import block_action_body
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.runbooks import Runbook, RunbookMatch
from tests.apphelpers import App, running_app

QUEUE_BACKLOG = {
    "name": "QueueBacklog",
    "status": "firing",
    "severity": "warning",
    "service": "billing",
    "summary": "QueueBacklog",
    "fingerprint": "billing-queue-1",
}


class _ModelParams(BaseModel):
    alias: str


class _NeedsModel:
    type: ClassVar[str] = "needs_model_test"
    Params: ClassVar[type[BaseModel]] = _ModelParams
    needs_model: ClassVar[bool] = True

    def preview(self, params: BaseModel, ctx: ActionContext) -> Preview:
        return Preview(executor="test", target="x")

    def run(self, params: BaseModel, ctx: ActionContext) -> ExecutionResult:
        return ExecutionResult(True, None, 0.0)


def _incident(**kw: Any) -> Incident:
    return Incident(id=1, title="t", severity="warning", source="generic", group_key="g", **kw)


def test_offerable_needs_a_runbook_that_names_the_alert_or_model() -> None:
    rb = Runbook(id="r", title="R")
    assert offerable(RunbookMatch(rb, 1.0, [], rule=True, semantic=0.1, specific=True))
    assert not offerable(RunbookMatch(rb, 1.0, [], rule=True, semantic=0.9, by_service=True))  # service alone
    assert not offerable(RunbookMatch(rb, 1.0, [], rule=False, semantic=1.0))  # text alone, however close
    assert not offerable(RunbookMatch(rb, 1.0, [], rule=False, semantic=0.34))  # the billing case
    assert not offerable(None)


def test_action_needing_a_model_is_out_of_scope_without_one() -> None:
    executors = {"needs_model_test": _NeedsModel()}
    action = ActionSpec(id="a", title="A", type="needs_model_test", params={"alias": "champion"})
    assert "needs a model" in (
        out_of_scope(action, incident=_incident(service="billing"), executors=executors, rule=Rule()) or ""
    )
    assert (
        out_of_scope(action, incident=_incident(model_name="fraud-model"), executors=executors, rule=Rule())
        is None
    )
    assert "services checkout" in (
        out_of_scope(
            action,
            incident=_incident(model_name="m", service="billing"),
            executors=executors,
            rule=Rule(services=("checkout",)),
        )
        or ""
    )
    unknown = ActionSpec(id="b", title="B", type="k8s_restart", params={})
    assert "action type 'k8s_restart' needs K8S_API_URL" in (
        out_of_scope(unknown, incident=_incident(), executors=executors, rule=Rule()) or ""
    )


def test_bad_actions_are_refused_naming_file_and_field() -> None:
    executors = {"needs_model_test": _NeedsModel()}
    with pytest.raises(ActionError, match=r"rb\.md: actions\[0\]\.params\.alias: Field required"):
        validate_actions([{"id": "a", "title": "A", "type": "needs_model_test"}], executors, path="rb.md")
    with pytest.raises(ActionError, match=r"rb\.md: actions\[0\]\.type: unknown action type 'nope'"):
        validate_actions([{"id": "a", "title": "A", "type": "nope"}], executors, path="rb.md")
    with pytest.raises(ActionError, match=r"actions\[1\]\.id: 'a' is used twice"):
        validate_actions(
            [{"id": "a", "title": "A", "type": "needs_model_test", "params": {"alias": "x"}}] * 2,
            executors,
            path="rb.md",
        )


@pytest.fixture
def app_real(sqlite_url: str, real_encoder: Any, target: WebhookTarget) -> Iterator[App]:
    with running_app(sqlite_url, real_encoder, target) as a:
        yield a


def _no_request_buttons(app: App) -> None:
    assert "remediation_request" not in json.dumps(app.posts()[-1].params["blocks"])


def _forge_request(app: App, action_id: str) -> None:
    button = {
        "action_id": "remediation_request:1",
        "value": f"1:{action_id}",
        "text": {"type": "plain_text", "text": "Request: forged"},
    }
    app.slack(
        block_action_body(
            user="U0SRELEAD", button=button, channel="C0INCIDENTS", message_ts=app.posts()[-1].response["ts"]
        )
    )


@pytest.mark.slow
def test_one_word_queue_backlog_on_billing_is_never_offered_the_model_rollback(app_real: App) -> None:
    app = app_real
    assert app.alert("generic", QUEUE_BACKLOG).status_code == 202
    _no_request_buttons(app)
    with app.rt.sessions() as s:
        rows = list(s.scalars(select(Suggestion).where(Suggestion.target_kind == "runbook")))
    assert all(r.features["offerable"] == 0.0 for r in rows)
    _forge_request(app, "rollback-model-alias")  # a forged click cannot get it either
    with app.rt.sessions() as s:
        assert s.scalar(select(RemediationRequest)) is None
    assert any("too weakly" in t or "not offered" in t for t in app.ephemerals())


def test_weak_match_shows_runbook_as_reading_only(app: App) -> None:
    """Fast variant with the hashing encoder: an alert no rule matches never gets buttons."""
    assert app.alert("generic", QUEUE_BACKLOG).status_code == 202
    _no_request_buttons(app)
    _forge_request(app, "rollback-model-alias")
    with app.rt.sessions() as s:
        assert s.scalar(select(RemediationRequest)) is None
    assert app.ephemerals()


def test_rule_matched_runbook_offers_its_actions_and_records_it(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    assert "Request: Restart PgBouncer" in json.dumps(app.posts()[0].params["blocks"])
    with app.rt.sessions() as s:
        row = s.scalars(select(Suggestion).where(Suggestion.target_kind == "runbook")).one()
    assert row.features["offerable"] == 1.0 and row.features["rule"] == 1.0
