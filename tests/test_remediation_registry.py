"""The executor registry and the typed request spec: one module + one table line adds an executor."""

from __future__ import annotations

from typing import ClassVar

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from bot.kernel.config import Settings
from bot.remediation.actions import ActionSpec, validate_action
from bot.remediation.base import ActionContext, ExecutionResult, Executor, Preview
from bot.remediation.executors.webhook import WebhookExecutor, WebhookParams
from bot.remediation.registry import EXECUTOR_FACTORIES, ExecutorRegistry
from bot.remediation.secrets import MASK, mask
from incident_bot import runtime
from incident_bot.runtime import build_executors


def _webhook() -> WebhookExecutor:
    return WebhookExecutor(client=httpx.Client(), base_url=None, secret=SecretStr("s"), timeout=1.0)


def test_composition_root_registers_the_webhook_executor() -> None:
    with httpx.Client() as client:
        registry = build_executors(Settings(_env_file=None), client)
    assert set(registry) == {"webhook"} and isinstance(registry["webhook"], Executor)


class PageParams(BaseModel):
    team: str


class PageExecutor:
    """A stand-in for a new executor module: its class, its settings model and its factory."""

    type: ClassVar[str] = "page"
    Params: ClassVar[type[BaseModel]] = PageParams
    needs_model: ClassVar[bool] = False

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def preview(self, params: BaseModel, ctx: ActionContext) -> Preview:
        return Preview(executor="Page", target=self.base_url)

    def run(self, params: BaseModel, ctx: ActionContext) -> ExecutionResult:
        return ExecutionResult(True, 200, 0.0)


class PageSettings(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)
    action_base_url: str | None  # a Settings field, read by name


def page_from_settings(settings: Settings, http_client: httpx.Client) -> list[Executor]:
    s = PageSettings.model_validate(settings)
    return [PageExecutor(s.action_base_url)] if s.action_base_url else []


def test_an_executor_factory_table_entry_is_all_build_executors_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "EXECUTOR_FACTORIES", (*EXECUTOR_FACTORIES, page_from_settings))
    with httpx.Client() as client:
        assert list(build_executors(Settings(_env_file=None), client)) == ["webhook"]  # not configured: none
        built = build_executors(Settings(_env_file=None, action_base_url="https://pager.example.com"), client)
    assert list(built) == ["webhook", "page"] and isinstance(built["page"], PageExecutor)
    assert built["page"].base_url == "https://pager.example.com"  # type: ignore[attr-defined]


def test_registry_refuses_duplicates_and_non_executors() -> None:
    reg = ExecutorRegistry([_webhook()])
    with pytest.raises(ValueError, match="two executors for action type 'webhook'"):
        reg.add(_webhook())
    with pytest.raises(TypeError, match="does not implement the Executor protocol"):
        reg.add(object())  # type: ignore[arg-type]


def test_legacy_url_beside_type_becomes_a_typed_param_and_round_trips() -> None:
    reg = ExecutorRegistry([_webhook()])
    spec = validate_action(
        {
            "id": "restart",
            "title": "Restart",
            "type": "webhook",
            "url": "/actions/r",
            "approvers": ["U0A"],
            "params": {"deployment": "x"},
        },
        reg,
        where="rb.md: actions[0]",
    )
    assert spec.stored() == {
        "id": "restart",
        "title": "Restart",
        "type": "webhook",
        "approvers": ["U0A"],
        "params": {"url": "/actions/r", "deployment": "x"},
    }
    typed = ActionSpec.model_validate(spec.stored()).typed_params(reg)
    assert (
        isinstance(typed, WebhookParams)
        and typed.url == "/actions/r"
        and typed.extra() == {"deployment": "x"}
    )


def test_mask_hides_secret_values_and_url_credentials() -> None:
    got = mask({"password": "p", "nested": {"api_key": "k", "ok": 1}, "url": "https://u:pw@h/x?token=t&a=1"})
    assert got["password"] == MASK and got["nested"] == {"api_key": MASK, "ok": 1}
    assert (
        "pw" not in got["url"] and "token=" in got["url"] and "=t&" not in got["url"] and "a=1" in got["url"]
    )
