"""When an automated action may be offered (a button), and when a runbook is only shown as reading.

An action is offered only when (1) its runbook matched the incident by a front-matter rule (alert name,
service, labels, model) or by text with cosine similarity at or above the calibrated threshold
(``benchmarks/guardrail.py``), and (2) the incident is in the action's scope: an executor that needs a
model never runs for an incident without one, and the policy's services/environments allow it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.kernel.models import Incident
from bot.remediation.actions import ActionSpec
from bot.remediation.base import Executor
from bot.remediation.policy import Rule
from retrieval.runbooks import RunbookMatch

# Calibrated with the real all-MiniLM-L6-v2 by benchmarks/guardrail.py: above every unrelated alert text
# (public postmortems, one-word alerts on other services) seen against the bundled runbooks, below the
# text-only matches of the bundled sample incidents. See README "Guardrails".
TEXT_THRESHOLD = 0.65
ENVIRONMENT_LABELS = ("environment", "env")


def offerable(match: RunbookMatch | None, *, threshold: float = TEXT_THRESHOLD) -> bool:
    return match is not None and (match.rule or match.semantic >= threshold)


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
        return f"no executor for action type '{action.type}' is configured"
    if executor.needs_model and not incident.model_name:
        return "this action needs a model and the incident has none"
    if rule.services and (incident.service or "") not in rule.services:
        return f"policy allows this action only for services {', '.join(rule.services)}"
    if rule.environments:
        env = environment_of(incident)
        if env not in rule.environments:
            return f"policy allows this action only in environments {', '.join(rule.environments)}"
    return None


class Offer:
    """Decides, for an incident and its best runbook, which actions get a "Request" button."""

    def __init__(
        self,
        *,
        executors: Mapping[str, Executor],
        rule_for: Callable[[ActionSpec], Rule],
        threshold: float = TEXT_THRESHOLD,
    ) -> None:
        self._executors = executors
        self._rule_for = rule_for
        self.threshold = threshold

    def actions(
        self, incident: Incident, match: RunbookMatch | None, *, strong: bool | None = None
    ) -> list[ActionSpec]:
        """``strong``: the stored guardrail verdict (None: judge ``match`` now)."""
        if match is None or not (offerable(match, threshold=self.threshold) if strong is None else strong):
            return []
        specs = [ActionSpec.model_validate(a) for a in match.runbook.actions]
        return [
            a
            for a in specs
            if out_of_scope(a, incident=incident, executors=self._executors, rule=self._rule_for(a)) is None
        ]
