"""Units of the decision path: the policy source (re-read when policy.yml changes), approver resolution that
says why a name is empty, and the readable approval blocks (refusals, every approver, the freeze line)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.kernel.models import Incident, RemediationRequest
from bot.remediation.directory import GroupCache, resolve_approvers
from bot.remediation.policy import PolicyError, PolicySource
from handlers.blocks import approval as approval_blocks
from incident_bot.demo.slack_stub import find_button

EVIL = "<!channel> <https://evil.example|x>"


def _touch(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_policy_source_rereads_a_changed_file_and_fails_closed_on_a_broken_one(tmp_path: Path) -> None:
    p = tmp_path / "policy.yml"
    p.write_text("defaults:\n  approvals_required: 1\n")
    source = PolicySource(p, action_types={"webhook"})
    assert source.current().defaults.approvals_required == 1
    _touch(p, "defaults:\n  approvals_required: 3\n")
    assert source.current().defaults.approvals_required == 3  # seen at the next decision, no restart
    _touch(p, "defaults:\n  approvals_required: many\n")
    with pytest.raises(
        PolicyError, match=r"defaults\.approvals_required.*refused until policy\.yml is fixed"
    ):
        source.current()
    assert source.last_good().defaults.approvals_required == 3  # offers keep the last good policy
    _touch(p, "types:\n  nope: {}\n")  # an unknown action type is an error here too
    with pytest.raises(PolicyError, match="unknown action type"):
        source.current()
    p.unlink()
    with pytest.raises(PolicyError, match="not found"):
        source.current()
    p.write_text("defaults:\n  approvals_required: 2\n")
    assert source.current().defaults.approvals_required == 2 and source.error is None


def test_resolution_says_why_an_entry_named_nobody() -> None:
    def lookup(group: str) -> list[str]:
        if group == "S0NOSCOPE":
            raise LookupError("missing_scope")
        return [] if group == "S0EMPTY" else ["U0A"]

    notes: list[str] = []
    users = resolve_approvers(
        ("S0NOSCOPE", "S0EMPTY", "S0OK", "model-owner", "U0B"),
        model="fraud-model",
        model_owners={},
        groups=GroupCache(lookup),
        problems=notes,
    )
    assert users == ["U0A", "U0B"]
    assert notes == [
        "user group S0NOSCOPE could not be read: missing_scope",
        "user group S0EMPTY has no members",
        "model-owner: MODEL_OWNERS names nobody for model fraud-model",
    ]


def _request(**kw: object) -> RemediationRequest:
    base: dict[str, object] = dict(
        id=42,
        incident_id=7,
        runbook_id="r",
        action_id="a",
        action_title=f"Roll back {EVIL}",
        action={},
        approvers=["U0A"],
        requested_by="U0REQ",
        status="refused",
    )
    base.update(kw)
    return RemediationRequest(**base)


def test_a_refusal_reads_nothing_changed_and_names_every_approver() -> None:
    req = _request(
        result={"ok": False, "refused": True, "error": f"m@champion moved to v4 {EVIL}", "duration_ms": 3.0},
        reason="nothing changed: m@champion moved to v4",
    )
    text = json.dumps(approval_blocks.approval_outcome(req, actor="U0B", approved_by=["U0A", "U0B"]))
    assert "Refused: nothing changed" in text and "moved to v4" in text and "Failed" not in text
    assert "request #42" in text and "Approved by <@U0A>, <@U0B>" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    reply = approval_blocks.approval_result_text(req, approved_by=["U0A", "U0B"])
    assert reply.startswith("Action 'Roll back &lt;!channel&gt;")
    assert "was refused, nothing changed" in reply and "(request #42, approved by <@U0A>, <@U0B>)" in reply


def test_a_frozen_prompt_has_no_approve_button_and_says_why() -> None:
    from bot.remediation.base import Preview

    preview = Preview(executor="Signed webhook", target="https://ops.example.com")
    req = _request(status="pending")
    kw = dict(
        approvers=["U0A"], preview=preview, approver_notes=[f"user group S0X could not be read: {EVIL}"]
    )
    incident = Incident(
        id=7, title="Checkout down", severity="critical", source="alertmanager", group_key="g"
    )
    open_ = approval_blocks.approval_prompt(req, incident, **kw)  # type: ignore[arg-type]
    frozen = approval_blocks.approval_prompt(req, incident, frozen=True, **kw)  # type: ignore[arg-type]
    assert find_button(open_, "Approve") and find_button(frozen, "Reject")
    with pytest.raises(LookupError):
        find_button(frozen, "Approve")
    text = json.dumps(frozen)
    assert "frozen (kill switch)" in text and "(request #42)" in text
    assert "<@U0A> (user group S0X could not be read: &lt;!channel&gt;" in text


def test_freeze_notice_names_who_and_escapes_the_reason() -> None:
    line = approval_blocks.freeze_notice(frozen=True, actor="U0SRE", reason=f"deploy {EVIL}", pending=2)
    assert line.startswith("🧊 Remediation actions *frozen* by <@U0SRE> (deploy &lt;!channel&gt;")
    assert "2 pending approval prompt(s) lost their Approve button" in line
    cli = approval_blocks.freeze_notice(frozen=False, actor="cli:alice", reason=None, pending=0)
    assert cli.startswith("▶️ Remediation actions *unfrozen* by `cli:alice`")
