"""Block Kit builders, tested as data: limits, escaping, buttons and their values."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.kernel.models import AlertRecord, Incident, RemediationRequest
from bot.remediation.actions import ActionSpec
from bot.remediation.base import Preview
from handlers.blocks import approval as approval_blocks
from handlers.blocks import ids
from handlers.blocks import incident as incident_blocks
from handlers.blocks import render as render_blocks
from handlers.blocks.ids import ActionId, CallbackId, FeedbackKind
from retrieval.runbooks import Runbook, RunbookMatch
from retrieval.types import Document, Match

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
EVIL = "<!channel> <@U999> <https://evil.example|click> & <!here|x>"
OUR_URL = "https://tickets.example.com/INC-1"


def make_incident(**kw: Any) -> Incident:
    base: dict[str, Any] = dict(
        id=7,
        title=f"Checkout 5xx {EVIL}",
        severity="critical",
        service="checkout",
        source="alertmanager",
        status="open",
        kind="infra",
        group_key="g",
        created_at=NOW,
        first_alert_at=NOW,
    )
    base.update(kw)
    return Incident(**base)


def make_alert(status: str = "firing", **kw: Any) -> AlertRecord:
    base: dict[str, Any] = dict(
        status=status,
        name="HighErrorRate",
        severity="critical",
        source="alertmanager",
        summary=f"summary {EVIL}",
        description=f"desc {EVIL}",
        labels={"env": "prod", "x": EVIL},
        model=None,
    )
    base.update(kw)
    return AlertRecord(**base)


def make_match(i: int, url: str | None = OUR_URL) -> Match:
    doc = Document(
        id=f"INC-{i}",
        title=f"Past {i} {EVIL}",
        text="t",
        service="checkout",
        root_cause=f"pool exhausted {EVIL} " + "r" * 500,
        resolution=f"raised pool {EVIL}",
        created_at=datetime(2026, 3, i, tzinfo=UTC),
        url=url,
    )
    return Match(
        id=f"INC-{i}", title=doc.title, score=0.8234, why=[f"same service {EVIL}", "alert name"], document=doc
    )


def make_runbook(n_steps: int = 3, n_actions: int = 1) -> RunbookMatch:
    rb = Runbook(
        id="checkout-5xx",
        title=f"Checkout errors {EVIL}",
        steps=[f"step {i} {EVIL}" for i in range(n_steps)],
        actions=[
            {
                "id": f"act-{i}",
                "title": f"Restart {i} {EVIL}",
                "type": "webhook",
                "params": {"url": "https://ops.example.com/restart?token=SECRET"},
            }
            for i in range(n_actions)
        ],
    )
    return RunbookMatch(runbook=rb, score=0.9, why=[f"service matches {EVIL}"])


def incident_message(
    incident: Any, alerts: Any, matches: Any, runbook: RunbookMatch | None, **kw: Any
) -> Any:
    """The builder, with every action of the runbook offered (the guardrails are tested in test_guardrails)."""
    offered = [ActionSpec.model_validate(a) for a in runbook.runbook.actions] if runbook else []
    return incident_blocks.incident_message(incident, alerts, matches, runbook, offered=offered, **kw)


def all_texts(obj: Any) -> list[str]:
    """Every "text" string in a payload."""
    if isinstance(obj, dict):
        out = [obj["text"]] if isinstance(obj.get("text"), str) else []
        return out + [t for v in obj.values() if isinstance(v, dict | list) for t in all_texts(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in all_texts(v)]
    return []


def buttons(message: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in message if b["type"] == "actions" for e in b["elements"]]


def by_action(message: list[dict[str, Any]], action: ActionId) -> list[dict[str, Any]]:
    pattern = ids.action_pattern(action)
    return [b for b in buttons(message) if pattern.match(b["action_id"])]


def assert_no_injection(payload: Any, allowed_links: tuple[str, ...] = ()) -> None:
    for text in all_texts(payload):
        assert "<!channel>" not in text and "<!here" not in text and "<@U999>" not in text
        for m in re.finditer(r"<(?!@U0|!date\^)([^>]*)>", text):
            assert m.group(1).split("|")[0] in allowed_links, f"unexpected markup {m.group(0)!r} in {text!r}"
        assert "<http" not in text.replace(f"<{OUR_URL}|", "")


def full_message(**kw: Any) -> list[dict[str, Any]]:
    return incident_message(
        make_incident(**kw),
        [make_alert(), make_alert("resolved")],
        [make_match(1), make_match(2)],
        make_runbook(),
        now=NOW,
    )


def test_incident_message_escapes_every_untrusted_string() -> None:
    message = full_message()
    assert_no_injection(message, allowed_links=(OUR_URL,))
    dumped = json.dumps(message)
    assert "&lt;!channel&gt;" in dumped and "&lt;@U999&gt;" in dumped and "&amp;" in dumped
    assert message[0]["type"] == "header" and message[0]["text"]["type"] == "plain_text"
    assert message[0]["text"]["text"].startswith("🔴 critical · Checkout 5xx")


def test_incident_message_summary_fields() -> None:
    message = full_message(status="acknowledged", acknowledged_by="U0ACK")
    fields = next(b for b in message if b.get("fields"))["fields"]
    text = "\n".join(f["text"] for f in fields)
    assert "`checkout`" in text and "1 firing / 1 resolved" in text
    assert "acknowledged by <@U0ACK>" in text
    assert f"<!date^{int(NOW.timestamp())}^" in text and "|2026-11-22 09:00 UTC>" in text


def test_non_user_id_is_not_a_mention() -> None:
    message = full_message(status="acknowledged", acknowledged_by="<!channel>")
    assert_no_injection(message, allowed_links=(OUR_URL,))


def test_similar_incidents_link_score_date_and_feedback() -> None:
    message = full_message()
    text = "\n".join(all_texts(message))
    assert "*0.82* · 2026-03-01 · <https://tickets.example.com/INC-1|Past 1 &lt;!channel&gt;" in text
    assert "same service &lt;!channel&gt;" in text
    ups = by_action(message, ActionId.FEEDBACK_UP)
    downs = by_action(message, ActionId.FEEDBACK_DOWN)
    assert [ids.parse_feedback_value(b["value"]) for b in ups] == [
        (7, FeedbackKind.DOCUMENT, "INC-1"),
        (7, FeedbackKind.DOCUMENT, "INC-2"),
        (7, FeedbackKind.RUNBOOK, "checkout-5xx"),
    ]
    assert len(downs) == 3
    action_ids = [b["action_id"] for b in buttons(message)]
    assert len(action_ids) == len(set(action_ids)), "action ids must be unique within a message"


def test_rca_snippet_is_bounded() -> None:
    message = full_message()
    root = next(t for t in all_texts(message) if "Root cause" in t)
    line = next(ln for ln in root.splitlines() if "Root cause" in ln)
    assert len(line) <= len("_Root cause:_ ") + 200


def test_javascript_url_is_not_linked() -> None:
    message = incident_message(make_incident(), [], [make_match(1, url="javascript:alert(1)")], None, now=NOW)
    text = "\n".join(all_texts(message))
    assert "javascript:" not in text
    assert_no_injection(message)


def test_empty_suggestions() -> None:
    message = incident_message(make_incident(), [], [], None, now=NOW)
    text = "\n".join(all_texts(message))
    assert "No similar past incidents found." in text and "No runbook matched." in text
    assert [b["action_id"] for b in buttons(message)] == [ActionId.ACK, ActionId.RESOLVE]


def test_one_request_button_per_action_with_its_value() -> None:
    message = incident_message(make_incident(), [], [], make_runbook(n_actions=3), now=NOW)
    requests = by_action(message, ActionId.REQUEST)
    assert [b["value"] for b in requests] == ["7:act-0", "7:act-1", "7:act-2"]
    assert [ids.parse_request_action_value(b["value"]) for b in requests] == [
        (7, f"act-{i}") for i in range(3)
    ]
    assert all(
        b["text"]["text"].startswith("Request: Restart") and len(b["text"]["text"]) <= 75 for b in requests
    )
    assert "SECRET" not in json.dumps(message)
    ack = by_action(message, ActionId.ACK)
    assert ack[0]["style"] == "primary" and ack[0]["value"] == "7"


def test_acknowledge_hidden_once_acknowledged() -> None:
    message = full_message(status="acknowledged", acknowledged_by="U0ACK")
    assert not by_action(message, ActionId.ACK)
    assert by_action(message, ActionId.RESOLVE) and by_action(message, ActionId.REQUEST)


def test_buttons_hidden_after_resolve() -> None:
    message = full_message(
        status="resolved", resolved_by="U0RES", resolved_at=NOW, rca_note=f"it was DNS {EVIL}"
    )
    for action in (ActionId.ACK, ActionId.RESOLVE, ActionId.REQUEST):
        assert not by_action(message, action)
    text = "\n".join(all_texts(message))
    assert "✅ Resolved by <@U0RES> at <!date^" in text
    assert "> it was DNS &lt;!channel&gt;" in text
    assert_no_injection(message, allowed_links=(OUR_URL,))


def test_message_stays_within_limits_at_maximum_size() -> None:
    long = "x" * 5000
    message = incident_message(
        make_incident(title=long),
        [make_alert(description=long)] * 30,
        [make_match(i) for i in range(1, 6)],
        make_runbook(n_steps=40, n_actions=30),
        now=NOW,
    )
    assert len(message) <= 50
    assert len(message[0]["text"]["text"]) <= 150
    for b in message:
        if b["type"] == "section" and "text" in b:
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "actions":
            assert len(b["elements"]) <= 25
    assert len(by_action(message, ActionId.FEEDBACK_UP)) == 4  # 3 matches + runbook
    text = "\n".join(all_texts(message))
    assert "10. step 9" in text and "11. step" not in text and "30 more steps" in text


def test_model_field() -> None:
    alert = make_alert(
        model={
            "name": "fraud-model",
            "version": "12",
            "metric": "psi_drift",
            "value": 0.31,
            "threshold": 0.2,
            "owner": "U0MLOWNER",
        }
    )
    message = incident_message(make_incident(model_name="fraud-model"), [alert], [], None, now=NOW)
    text = "\n".join(all_texts(message))
    assert "`fraud-model` v12" in text and "`psi_drift` 0.31 vs threshold 0.2" in text
    # the owner named by the alert payload is shown as text, never as a mention (it grants nothing)
    assert "reported owner: U0MLOWNER" in text and "<@U0MLOWNER>" not in text


def test_fallback_text_is_escaped_without_mentions() -> None:
    text = incident_blocks.incident_fallback_text(make_incident())
    assert "#7" in text and "<" not in text and "@channel" not in text


def make_request(**kw: Any) -> RemediationRequest:
    base: dict[str, Any] = dict(
        id=42,
        incident_id=7,
        runbook_id="checkout-5xx",
        action_id="act-0",
        action_title=f"Restart pods {EVIL}",
        action={
            "id": "act-0",
            "type": "webhook",
            "url": "https://ops.example.com:8443/restart?token=SECRET",
            "params": {"deployment": f"checkout {EVIL}", "replicas": 3},
        },
        approvers=["U0APPROVE"],
        requested_by="U0REQ",
        status="pending",
    )
    base.update(kw)
    return RemediationRequest(**base)


PREVIEW = Preview(
    executor="Signed webhook",
    target="https://ops.example.com:8443",
    method="POST",
    path="/restart",
    params={"deployment": f"checkout {EVIL}", "replicas": 3, "token": "••••"},
    details=[("idempotency key", "incident-bot-request-42")],
)


def test_approval_prompt_states_what_will_run() -> None:
    prompt = approval_blocks.approval_prompt(
        make_request(),
        make_incident(),
        approvers=["U0APPROVE", "model-owner <!here>"],
        preview=PREVIEW,
        approved_by=["U0FIRST"],
        required=2,
        expires_at=NOW,
        why=f"runbook “Checkout {EVIL}”",
    )
    assert_no_injection(prompt)
    text = "\n".join(all_texts(prompt))
    assert "<@U0REQ> requests *Restart pods &lt;!channel&gt;" in text and "incident #7" in text
    assert "`https://ops.example.com:8443`" in text and "`POST /restart`" in text
    assert "SECRET" not in json.dumps(prompt)
    assert (
        "`replicas=3`" in text and "deployment=checkout &lt;!channel&gt;" in text and "`token=••••`" in text
    )
    assert "Approvers: <@U0APPROVE>, model-owner &lt;!here&gt;" in text
    assert "*Approvals:* 1 of 2 (<@U0FIRST>)" in text and "*Expires:* <!date^" in text
    assert "*Why:* runbook “Checkout &lt;!channel&gt;" in text
    approve, reject = buttons(prompt)
    assert (approve["action_id"], approve["value"], approve["style"]) == (ActionId.APPROVE, "42", "primary")
    assert (reject["action_id"], reject["value"], reject["style"]) == (ActionId.REJECT, "42", "danger")
    confirm = approve["confirm"]["text"]["text"]
    assert (
        confirm.startswith("Run Restart pods")
        and "POST /restart" in confirm
        and "deployment=checkout" in confirm
    )
    assert "1 of 2 approvals so far" in confirm and "Expires 2026-" in confirm
    assert ids.parse_request_value(approve["value"]) == 42


def test_approval_prompt_without_a_preview_cannot_be_approved() -> None:
    bad = Preview(executor="Webhook", target="?", error="ACTION_BASE_URL is not set")
    prompt = approval_blocks.approval_prompt(
        make_request(), make_incident(), approvers=["U0APPROVE"], preview=bad
    )
    assert [b["action_id"] for b in buttons(prompt)] == [ActionId.REJECT]
    assert "Cannot preview:* ACTION_BASE_URL is not set" in "\n".join(all_texts(prompt))


def test_withheld_actions_get_no_buttons_and_say_why() -> None:
    message = incident_blocks.incident_message(
        make_incident(), [], [], make_runbook(n_actions=2), offered=[], now=NOW
    )
    assert not by_action(message, ActionId.REQUEST)
    assert "2 automated action(s) of this runbook not offered" in "\n".join(all_texts(message))


@pytest.mark.parametrize(
    ("status", "result", "expected"),
    [
        ("rejected", None, ["Rejected* by <@U0BOSS>"]),
        ("approved", None, ["Approved* by <@U0BOSS>, running"]),
        ("expired", None, ["*Expired* before enough approvals"]),
        ("cancelled", None, ["*Cancelled* (by the requester)"]),
        (
            "succeeded",
            {"ok": True, "status_code": 200, "duration_ms": 12.4, "error": None, "response_excerpt": "ok"},
            ["✅ *Succeeded* · HTTP 200 · 12 ms", "> ok"],
        ),
        (
            "failed",
            {
                "ok": False,
                "status_code": None,
                "duration_ms": 10000.0,
                "error": f"timeout {EVIL}",
                "response_excerpt": None,
            },
            ["❌ *Failed* · 10000 ms", "*Error:* timeout &lt;!channel&gt;"],
        ),
    ],
)
def test_approval_outcome(status: str, result: dict[str, Any] | None, expected: list[str]) -> None:
    outcome = approval_blocks.approval_outcome(make_request(status=status, result=result), actor="U0BOSS")
    assert not buttons(outcome)
    assert_no_injection(outcome)
    text = "\n".join(all_texts(outcome))
    for piece in expected:
        assert piece in text


def test_ephemeral_error_escapes() -> None:
    out = approval_blocks.ephemeral_error(f"not allowed {EVIL}")
    assert_no_injection(out)
    assert out[0]["type"] == "section"


def test_resolve_modal() -> None:
    view = approval_blocks.resolve_modal(make_incident())
    assert view["type"] == "modal" and view["callback_id"] == CallbackId.RESOLVE_MODAL
    assert view["private_metadata"] == "7"
    block = next(b for b in view["blocks"] if b["type"] == "input")
    assert block["block_id"] == "rca" and block["optional"] is True
    assert block["element"] == {
        "type": "plain_text_input",
        "action_id": "rca_note",
        "multiline": True,
        "max_length": 3000,
    }
    assert_no_injection(view)


def test_render_text_shows_title_and_buttons() -> None:
    out = render_blocks.render_text(full_message())
    assert "🔴 critical · Checkout 5xx <!channel>" in out  # decoded for display, not for Slack
    assert "[ Acknowledge ]" in out and "[ Resolve ]" in out and "[ Request: Restart 0" in out
    assert "Past 1 <!channel>" in out and "(https://tickets.example.com/INC-1)" in out
    assert "&lt;" not in out and "&amp;" not in out
    assert "2026-11-22 09:00 UTC" in out
    modal = render_blocks.render_text(approval_blocks.resolve_modal(make_incident()))
    assert "Resolve incident" in modal and "Root cause / what fixed it" in modal


def test_ids_that_cannot_round_trip_get_no_buttons_instead_of_crashing() -> None:
    match = make_match(1)
    match.id = " bad\nid"
    runbook = make_runbook(n_actions=2)
    runbook.runbook.actions[0]["id"] = "x" * 300
    message = incident_message(make_incident(), [], [match], runbook, now=NOW)
    assert [ids.parse_feedback_value(b["value"]).kind for b in by_action(message, ActionId.FEEDBACK_UP)] == [
        FeedbackKind.RUNBOOK
    ]
    assert [b["value"] for b in by_action(message, ActionId.REQUEST)] == ["7:act-1"]


def test_actions_not_offered_are_listed_with_their_reason_escaped() -> None:
    rb = make_runbook(n_actions=2)
    withheld = [
        (ActionSpec.model_validate(a), f"`deployment` '{EVIL}' does not name the incident's service checkout")
        for a in rb.runbook.actions
    ]
    message = incident_blocks.incident_message(
        make_incident(), [], [], rb, offered=[], withheld=withheld, now=NOW
    )
    text = json.dumps(message)
    assert "Request:" not in text
    assert "Restart 0" in text and text.count("not offered: `deployment`") == 2
    assert "<!channel>" not in text
