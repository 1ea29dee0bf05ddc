"""Typed runbook actions: validated when a runbook is imported, stored typed on each request.

A runbook's front matter keeps its ``actions`` as plain mappings (retrieval/ only ranks runbooks).
This module turns each into an :class:`ActionSpec`, checking its ``params`` against the executor's
``Params`` model; any error names the runbook file and the field (``actions[0].params.url``).
A parameter may be a template over the incident (``bot/remediation/binding.py``): its syntax and variables
are checked here, its value when a request is made. An action type whose executor is not configured here is
still validated (``registry.ACTION_TYPES``) and imported; it is not offered until its setting is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.kernel.errors import ConfigError
from bot.kernel.validation import format_loc
from bot.remediation.base import Executor
from bot.remediation.binding import TemplateProblem, check_templates, templated_keys
from bot.remediation.registry import ACTION_TYPES

ACTION_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class ActionError(ConfigError, ValueError):
    """A runbook action that cannot be used; the message names the file and the field."""


class ActionSpec(BaseModel):
    """One runbook action, with ``params`` already validated by its executor."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    title: str = Field(min_length=1, max_length=300)
    type: str
    approvers: tuple[str, ...] = ()  # optional; policy.yml decides when it names the action or its type
    params: dict[str, Any] = Field(default_factory=dict)  # templates until a request renders them
    # "alert": offered only when the runbook names the alert or the model; "any_alert_of_service": also
    # when it matched by service alone, if every target parameter is a template (binding.fully_bound)
    offer_on: Literal["alert", "any_alert_of_service"] = "alert"

    def typed_params(self, registry: Mapping[str, Executor]) -> BaseModel:
        return registry[self.type].Params.model_validate(self.params)

    def stored(self) -> dict[str, Any]:
        """The JSON kept on the request (``"type"`` is part of the contract other features read);
        ``offer_on`` only when it is not the default, so earlier stored specs read the same."""
        return self.model_dump(mode="json", exclude={"offer_on"} if self.offer_on == "alert" else set())


def validate_action(raw: Any, registry: Mapping[str, Executor], *, where: str) -> ActionSpec:
    """``where`` is e.g. ``"runbooks/x.md: actions[0]"``."""
    if not isinstance(raw, Mapping):
        raise ActionError(f"{where}: must be a mapping")
    data = dict(raw)
    a_type = str(data.get("type", "webhook"))
    if a_type in registry:
        params_model = registry[a_type].Params
    elif a_type in ACTION_TYPES:  # known, not configured here: validated now, offered once its setting is set
        params_model = ACTION_TYPES[a_type][0]
    else:
        raise ActionError(
            f"{where}.type: unknown action type '{a_type}' "
            f"(known: {', '.join(sorted({*ACTION_TYPES, *registry}))})"
        )
    params = data.get("params") or {}
    if not isinstance(params, Mapping):
        raise ActionError(f"{where}.params: must be a mapping")
    params = dict(params)
    if "url" in data:  # older webhook form: url beside type
        if "url" in params:
            raise ActionError(f"{where}.url: give the URL once, either beside 'type' or in 'params'")
        params = {"url": data.pop("url"), **params}
    for key in ("id", "title"):
        if not data.get(key):
            raise ActionError(f"{where}.{key}: is required")
    if not ACTION_ID.match(str(data["id"])):
        raise ActionError(f"{where}.id: lowercase letters, digits, '.', '_' or '-' (at most 100)")
    approvers = data.get("approvers") or []
    if isinstance(approvers, str):
        approvers = [approvers]
    if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
        raise ActionError(
            f"{where}.approvers: must be a list of Slack user ids, user group ids or 'model-owner'"
        )
    try:
        check_templates(params)
    except TemplateProblem as exc:
        raise ActionError(f"{where}.{exc}") from None
    templated = set(templated_keys(params))
    try:
        stored = params_model.model_validate(params).model_dump(mode="json")
    except ValidationError as exc:
        # a template's value is checked when it is rendered; every other parameter is checked now
        errors = [e for e in exc.errors() if not (e["loc"] and e["loc"][0] in templated)]
        if errors:
            first = errors[0]
            raise ActionError(f"{format_loc(first['loc'], (where, 'params'))}: {first['msg']}") from None
        stored = params
    try:
        return ActionSpec(
            id=str(data["id"]),
            title=str(data["title"]),
            type=a_type,
            approvers=tuple(approvers),
            params=stored,
            offer_on=data.get("offer_on", "alert"),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ActionError(f"{format_loc(first['loc'], (where,))}: {first['msg']}") from None


def validate_actions(raw_actions: Any, registry: Mapping[str, Executor], *, path: str) -> list[ActionSpec]:
    if raw_actions is None:
        return []
    if not isinstance(raw_actions, list):
        raise ActionError(f"{path}: actions: must be a list")
    specs = [validate_action(a, registry, where=f"{path}: actions[{i}]") for i, a in enumerate(raw_actions)]
    seen: set[str] = set()
    for i, s in enumerate(specs):
        if s.id in seen:
            raise ActionError(f"{path}: actions[{i}].id: '{s.id}' is used twice")
        seen.add(s.id)
    return specs
