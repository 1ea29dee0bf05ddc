"""Actions bound to the incident: parameters rendered from the incident, and checked to name only it.

A runbook action's ``params`` may hold templates over the incident (Jinja2 in a ``SandboxedEnvironment``
with ``StrictUndefined``; never ``str.format`` on alert labels):

    {{ service }}  {{ model }}  {{ environment }}  {{ alert_name }}  {{ incident_id }}
    {{ labels.<name> }}  {{ annotations.<name> }}

Templates are checked when a runbook is imported (syntax and variable names; an error names the file,
the action and the parameter) and rendered when a request is made, from the incident's rows; the rendered
values are stored on the request and are what the prompt shows and the executor runs. Labels and
annotations are those every alert of the incident that carries them agrees on (a value that differs
between the incident's alerts is treated as missing: a button must not pick one of two targets).

An action is *not offered* (the runbook is still shown, with the reason) when a template cannot be filled
("label `deployment` missing"), when the rendered parameters fail the executor's validation, or when a
parameter that names a target names something else than the incident:

- ``service`` must equal the incident's service, or a service the action's policy scope lists;
- ``deployment`` and ``database`` must name that service as a whole word: equal to it, or with it as a
  ``-``-separated part (``checkout``, ``checkout-worker``, ``pgbouncer-checkout``);
- ``model`` must equal the incident's model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ValidationError

from bot.kernel.errors import ConfigError
from bot.kernel.models import Incident
from bot.kernel.validation import format_loc

VARIABLES = ("service", "model", "environment", "alert_name", "incident_id", "labels", "annotations")
SERVICE_KEY = "service"  # must equal the incident's service (or one the policy scope allows)
RESOURCE_KEYS = ("deployment", "database")  # must name that service as a whole word
MODEL_KEY = "model"  # must equal the incident's model
TARGET_KEYS = (SERVICE_KEY, *RESOURCE_KEYS, MODEL_KEY)
ENVIRONMENT_LABELS = ("environment", "env")
_KIND = {"labels": "label", "annotations": "annotation"}


class TemplateProblem(ConfigError, ValueError):
    """A template that cannot be used (on import), or cannot be filled for an incident (at request time);
    the message names the parameter. Never reaches a user as an error: it becomes a reason not to offer."""


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    from jinja2 import StrictUndefined

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


def templated_keys(params: Mapping[str, Any]) -> list[str]:
    return [k for k, v in params.items() if is_template(v)]


def _needs(source: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The top-level variables a template reads, and the (labels|annotations, key) pairs it looks up."""
    from jinja2 import meta

    ast = environment().parse(source)
    names = set(meta.find_undeclared_variables(ast))
    keys: set[tuple[str, str]] = set()
    for node in ast.find_all(nodes.Getattr):
        assert isinstance(node, nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name in _KIND:
            keys.add((node.node.name, node.attr))
    for item in ast.find_all(nodes.Getitem):
        assert isinstance(item, nodes.Getitem)
        if isinstance(item.node, nodes.Name) and item.node.name in _KIND:
            if isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
                keys.add((item.node.name, item.arg.value))
    return names, keys


def check_templates(params: Mapping[str, Any]) -> None:
    """Raise TemplateProblem naming the parameter for a syntax error or an unknown variable."""
    for key, value in params.items():
        if not is_template(value):
            continue
        try:
            names, _ = _needs(value)
        except TemplateError as exc:
            raise TemplateProblem(f"params.{key}: template error: {exc}") from None
        unknown = sorted(names - set(VARIABLES))
        if unknown:
            raise TemplateProblem(
                f"params.{key}: unknown template variable '{unknown[0]}' (known: {', '.join(VARIABLES)})"
            )


def _agreed(maps: Iterable[Mapping[str, Any] | None]) -> dict[str, str]:
    """Keys whose value every map that has the key agrees on."""
    seen: dict[str, str | None] = {}
    for m in maps:
        for k, v in (m or {}).items():
            value = str(v)
            if k not in seen:
                seen[k] = value
            elif seen[k] != value:
                seen[k] = None  # the alerts disagree: not a value a button may pick
    return {k: v for k, v in seen.items() if v is not None}


def incident_vars(incident: Incident) -> dict[str, Any]:
    """What templates may read, from the incident's rows (None: the incident has no such value)."""
    alerts = list(incident.alerts)
    labels = _agreed(a.labels for a in alerts)
    env = next((labels[k] for k in ENVIRONMENT_LABELS if labels.get(k)), None)
    return {
        "service": incident.service or None,
        "model": incident.model_name or None,
        "environment": env,
        "alert_name": alerts[0].name if alerts else None,
        "incident_id": incident.id,
        "labels": labels,
        "annotations": _agreed(a.annotations for a in alerts),
    }


def render(params: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """Render every template value; raise TemplateProblem saying what is missing."""
    from jinja2 import UndefinedError

    out = dict(params)
    context = {k: v for k, v in variables.items() if v is not None}
    for key, value in params.items():
        if not is_template(value):
            continue
        try:
            text = environment().from_string(value).render(context).strip()
        except (
            UndefinedError
        ) as exc:  # say which value the incident lacks (a `| default(...)` never gets here)
            names, keys = _needs(value)
            missing = [
                f"the incident has no {n.replace('_', ' ')}" for n in sorted(names) if n not in context
            ]
            missing += [f"{_KIND[r]} `{k}` missing" for r, k in sorted(keys) if k not in context.get(r, {})]
            raise TemplateProblem(f"{missing[0] if missing else exc} (`{key}`)") from None
        except TemplateError as exc:
            raise TemplateProblem(f"`{key}` could not be filled: {exc}") from None
        if not text:
            raise TemplateProblem(f"`{key}` renders empty")
        out[key] = text
    return out


def names_service(value: str, service: str) -> bool:
    """``value`` names ``service`` as a whole word: equal, or a ``-``-separated part of it."""
    return bool(service) and (
        value == service or re.search(rf"(?:^|-){re.escape(service)}(?:-|$)", value) is not None
    )


def wrong_target(
    params: Mapping[str, Any], *, service: str | None, model: str | None, allowed: Iterable[str] = ()
) -> str | None:
    """Why a (rendered) parameter names something else than the incident, or None."""
    services = [s for s in (service, *allowed) if s]
    value = params.get(SERVICE_KEY)
    if isinstance(value, str) and value not in services:
        return f"`{SERVICE_KEY}` is {value!r}, not the incident's service {service or '(none)'}"
    for key in RESOURCE_KEYS:
        value = params.get(key)
        if isinstance(value, str) and not any(names_service(value, s) for s in services):
            return f"`{key}` {value!r} does not name the incident's service {service or '(none)'}"
    value = params.get(MODEL_KEY)
    if isinstance(value, str) and value != model:
        return f"`{MODEL_KEY}` is {value!r}, not the incident's model {model or '(none)'}"
    return None


def fully_bound(params: Mapping[str, Any]) -> bool:
    """Every parameter that names a target comes from a template, and at least one parameter does."""
    return bool(templated_keys(params)) and all(
        is_template(params[k]) for k in TARGET_KEYS if k in params and params[k] is not None
    )


@dataclass(frozen=True)
class Bound:
    params: dict[str, Any]  # rendered and validated by the executor's Params


def bind(
    params: Mapping[str, Any],
    params_model: type[BaseModel] | None,
    incident: Incident,
    *,
    allowed_services: Iterable[str] = (),
    variables: Mapping[str, Any] | None = None,
) -> Bound | str:
    """The action's parameters for this incident, or the reason it cannot be offered."""
    variables = incident_vars(incident) if variables is None else variables
    try:
        rendered = render(params, variables)
    except TemplateProblem as exc:
        return str(exc)
    if params_model is not None and templated_keys(params):
        try:
            rendered = params_model.model_validate(rendered).model_dump(mode="json")
        except ValidationError as exc:
            first = exc.errors()[0]
            return f"{format_loc(first['loc'], ('params',))}: {first['msg']}"
    why = wrong_target(
        rendered, service=incident.service, model=incident.model_name, allowed=allowed_services
    )
    return why if why else Bound(rendered)
