"""policy.yml: validated at start with errors naming the file and field; resolution is predictable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kernel.config import SAMPLE_DATA, Settings
from bot.kernel.errors import ConfigError
from bot.remediation.directory import GroupCache, resolve_approvers
from bot.remediation.policy import PolicyError, load_policy
from incident_bot.runtime import build_runtime


def test_sample_policy_reads_as_documented() -> None:
    policy = load_policy(SAMPLE_DATA / "policy.yml", action_types={"webhook"})
    rollback = policy.rule_for(action_id="rollback-model-alias", action_type="webhook")
    assert rollback.approvers == ("model-owner", "U0MLLEAD") and rollback.approvals_required == 2
    assert rollback.ttl_minutes == 20 and rollback.rate_limit_per_hour == 6  # from defaults
    other = policy.rule_for(action_id="restart-pgbouncer", action_type="webhook", runbook_approvers=("U0X",))
    assert other.approvers == ("U0SRELEAD", "S0SREONCALL") and other.approvals_required == 1
    assert policy.rule_for(action_id="expand-volume", action_type="webhook").services == ("inventory",)


def test_without_policy_the_runbook_approvers_apply_with_two_people() -> None:
    rule = load_policy(None).rule_for(action_id="a", action_type="webhook", runbook_approvers=("U0A",))
    assert rule.approvers == ("U0A",) and rule.approvals_required == 1 and rule.ttl_minutes == 60


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "actions:\n  x:\n    approvers: [bob]\n",
            r"policy\.yml: actions\.x\.approvers: .*'bob' is not a Slack user id",
        ),
        (
            "defaults:\n  approvals_required: 0\n",
            r"policy\.yml: defaults\.approvals_required: .*greater than or equal to 1",
        ),
        ("defaults:\n  ttl: 5\n", r"policy\.yml: defaults\.ttl: Extra inputs are not permitted"),
        ("types:\n  nope: {}\n", r"policy\.yml: types\.nope: unknown action type"),
        # a list index reads as everywhere else (bot/kernel/validation.py format_loc): services[0], not services.0
        (
            "defaults:\n  services: [1]\n",
            r"policy\.yml: defaults\.services\[0\]: Input should be a valid string",
        ),
        ("- a\n", r"policy\.yml: must be a mapping"),
        ("a: [\n", r"policy\.yml: invalid YAML"),
    ],
)
def test_bad_policy_names_file_and_field(tmp_path: Path, text: str, error: str) -> None:
    p = tmp_path / "policy.yml"
    p.write_text(text)
    with pytest.raises(PolicyError, match=error):
        load_policy(p, action_types={"webhook"})


def test_bad_policy_stops_the_app_at_start(tmp_path: Path, sqlite_url: str) -> None:
    p = tmp_path / "policy.yml"
    p.write_text("defaults:\n  approvals_required: many\n")
    settings = Settings(
        _env_file=None, database_url=sqlite_url, slack_bot_token="x", slack_signing_secret="y", policy_path=p
    )
    with pytest.raises(ConfigError, match=r"POLICY_PATH: .*policy\.yml: defaults\.approvals_required"):
        build_runtime(settings)


def test_user_groups_are_cached_and_fail_closed() -> None:
    calls: list[str] = []
    now = [0.0]

    def lookup(group: str) -> list[str]:
        calls.append(group)
        if group == "S0BROKEN":
            raise RuntimeError("slack down")
        return ["U0A", "U0B", "not-a-user"]

    cache = GroupCache(lookup, ttl_seconds=60, clock=lambda: now[0])
    got = resolve_approvers(
        ["S0TEAM", "model-owner", "U0C", "S0BROKEN"], model="m", model_owners={"m": ["U0OWNER"]}, groups=cache
    )
    assert got == ["U0A", "U0B", "U0OWNER", "U0C"]
    resolve_approvers(["S0TEAM"], model=None, model_owners={}, groups=cache)
    assert calls.count("S0TEAM") == 1
    now[0] = 61.0
    resolve_approvers(["S0TEAM"], model=None, model_owners={}, groups=cache)
    assert calls.count("S0TEAM") == 2
    assert resolve_approvers(["model-owner"], model=None, model_owners={"m": ["U0OWNER"]}, groups=cache) == []
