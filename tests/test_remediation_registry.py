"""The executor registry and the typed request spec: one module + one line adds an executor."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from bot.kernel.config import Settings
from bot.remediation.actions import ActionSpec, validate_action
from bot.remediation.base import Executor
from bot.remediation.executors.webhook import WebhookExecutor, WebhookParams
from bot.remediation.registry import ExecutorRegistry
from bot.remediation.secrets import MASK, mask
from incident_bot.runtime import build_executors


def _webhook() -> WebhookExecutor:
    return WebhookExecutor(client=httpx.Client(), base_url=None, secret=SecretStr("s"), timeout=1.0)


def test_composition_root_registers_the_webhook_executor() -> None:
    with httpx.Client() as client:
        registry = build_executors(Settings(_env_file=None), client)
    assert set(registry) == {"webhook"} and isinstance(registry["webhook"], Executor)


def test_registry_refuses_duplicates_and_non_executors() -> None:
    reg = ExecutorRegistry([_webhook()])
    with pytest.raises(ValueError, match="two executors for action type 'webhook'"):
        reg.add(_webhook())
    with pytest.raises(TypeError, match="does not implement the Executor protocol"):
        reg.add(object())  # type: ignore[arg-type]


def test_legacy_url_beside_type_becomes_a_typed_param_and_round_trips() -> None:
    reg = ExecutorRegistry([_webhook()])
    spec = validate_action({"id": "restart", "title": "Restart", "type": "webhook", "url": "/actions/r",
                            "approvers": ["U0A"], "params": {"deployment": "x"}}, reg, where="rb.md: actions[0]")
    assert spec.stored() == {"id": "restart", "title": "Restart", "type": "webhook", "approvers": ["U0A"],
                             "params": {"url": "/actions/r", "deployment": "x"}}
    typed = ActionSpec.model_validate(spec.stored()).typed_params(reg)
    assert isinstance(typed, WebhookParams) and typed.url == "/actions/r" and typed.extra() == {"deployment": "x"}


def test_mask_hides_secret_values_and_url_credentials() -> None:
    got = mask({"password": "p", "nested": {"api_key": "k", "ok": 1}, "url": "https://u:pw@h/x?token=t&a=1"})
    assert got["password"] == MASK and got["nested"] == {"api_key": MASK, "ok": 1}
    assert "pw" not in got["url"] and "token=" in got["url"] and "=t&" not in got["url"] and "a=1" in got["url"]
