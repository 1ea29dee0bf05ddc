"""When an automated action may be offered (a button), and when a runbook is only shown as reading.

An action is offered only when (1) its runbook names the incident's alert or model (a *specific* match,
``retrieval/runbooks.py``; services and labels only narrow it), or the runbook matched by service alone and
the action opts in with ``offer_on: any_alert_of_service`` and is fully bound by templates; a match by text
never offers anything; (2) the incident is in the action's scope: its executor is configured, an executor
that needs a model never runs for an incident without one, and the policy's services/environments allow
it; and (3) its parameters bind to the incident (``bot/remediation/binding.py``): every template fills
and no parameter names another service or model. Every action not offered carries its reason, shown
under the runbook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from bot.kernel.models import Incident
from bot.remediation.actions import ActionSpec
from bot.remediation.base import Executor
from bot.remediation.binding import ENVIRONMENT_LABELS, Bound, bind, fully_bound
from bot.remediation.policy import Rule
from bot.remediation.registry import ACTION_TYPES, not_configured
from retrieval.runbooks import RunbookMatch

READING_ONLY = "the runbook names neither this alert nor this model (shown for reading)"


@dataclass(frozen=True)
class Verdict:
    """What a runbook match allows, as stored on the incident's runbook suggestion."""

    specific: bool = False  # the runbook names the alert or the model
    by_service: bool = False  # a general match by the incident's service

    @classmethod
    def of(cls, match: RunbookMatch | None) -> Verdict:
        return cls(match.specific, match.by_service) if match is not None else cls()

    def features(self) -> dict[str, float]:
        # "offerable" is read by the KPI report (auto-triaged); "specific" by the Request click
        return {
            "offerable": float(self.specific),
            "specific": float(self.specific),
            "by_service": float(self.by_service),
        }

    @classmethod
    def from_features(cls, features: Mapping[str, float] | None) -> Verdict:
        f = features or {}
        return cls(bool(f.get("specific")), bool(f.get("by_service")))


def offerable(match: RunbookMatch | None) -> bool:
    return Verdict.of(match).specific


def environment_of(incident: Incident) -> str | None:
    for alert in incident.alerts:
        for key in ENVIRONMENT_LABELS:
            if (alert.labels or {}).get(key):
                return str(alert.labels[key])
    return None


def out_of_scope(
    action: ActionSpec, *, incident: Incident, executors: Mapping[str, Executor], rule: Rule
) -> str | None:
    """Why ``action`` may not run for ``incident``, or None when it may."""
    executor = executors.get(action.type)
    if executor is None:
        return not_configured(action.type)
    if executor.needs_model and not incident.model_name:
        return "this action needs a model and the incident has none"
    if rule.services and (incident.service or "") not in rule.services:
        return f"policy allows this action only for services {', '.join(rule.services)}"
    if rule.environments:
        env = environment_of(incident)
        if env not in rule.environments:
            return f"policy allows this action only in environments {', '.join(rule.environments)}"
    return None


def consider(
    action: ActionSpec,
    *,
    incident: Incident,
    verdict: Verdict,
    executors: Mapping[str, Executor],
    rule: Rule,
) -> ActionSpec | str:
    """The action bound to ``incident`` (rendered parameters), or why it is not offered."""
    if not verdict.specific:
        if not (verdict.by_service and action.offer_on == "any_alert_of_service"):
            return READING_ONLY
        if not fully_bound(action.params):
            return (
                "offer_on: any_alert_of_service needs every target parameter "
                "(service, deployment, database, model) to be a template"
            )
    why = out_of_scope(action, incident=incident, executors=executors, rule=rule)
    if why:
        return why
    executor = executors.get(action.type)
    params_model: type[BaseModel] | None = (
        executor.Params if executor is not None else ACTION_TYPES.get(action.type, (None, None))[0]
    )
    bound = bind(action.params, params_model, incident, allowed_services=rule.services)
    if not isinstance(bound, Bound):
        return bound
    return action.model_copy(update={"params": bound.params})


@dataclass(frozen=True)
class Review:
    offered: list[ActionSpec]  # bound: parameters rendered for this incident
    withheld: list[tuple[ActionSpec, str]]  # not offered, with the reason


class Offer:
    """Decides, for an incident and its best runbook, which actions get a "Request" button."""

    def __init__(self, *, executors: Mapping[str, Executor], rule_for: Callable[[ActionSpec], Rule]) -> None:
        self._executors = executors
        self._rule_for = rule_for

    def review(
        self, incident: Incident, match: RunbookMatch | None, verdict: Verdict | None = None
    ) -> Review:
        """``verdict``: the stored one (None: judge ``match`` now)."""
        if match is None:
            return Review([], [])
        verdict = Verdict.of(match) if verdict is None else verdict
        offered: list[ActionSpec] = []
        withheld: list[tuple[ActionSpec, str]] = []
        for raw in match.runbook.actions:
            action = ActionSpec.model_validate(raw)
            out = consider(
                action,
                incident=incident,
                verdict=verdict,
                executors=self._executors,
                rule=self._rule_for(action),
            )
            if isinstance(out, str):
                withheld.append((action, out))
            else:
                offered.append(out)
        return Review(offered, withheld)

    def actions(
        self, incident: Incident, match: RunbookMatch | None, verdict: Verdict | None = None
    ) -> list[ActionSpec]:
        return self.review(incident, match, verdict).offered
