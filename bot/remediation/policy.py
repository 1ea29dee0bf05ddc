"""Who may approve what: ``policy.yml``, validated at start (errors name the file and the field).

Resolution for an action: its entry under ``actions`` (by runbook action id), else its entry under ``types``
(by action type), else ``defaults``; a field an entry leaves out comes from ``defaults``. Approvers listed in
the policy replace those in the runbook; with none in either, nobody can approve (the action stays inert).

``approvals_required`` counts approvers *besides* the requester, who may never approve their own request:
the default 1 means two distinct people. ``model-owner`` means MODEL_OWNERS of the incident's model;
``S…`` ids are Slack user groups, expanded through ``usergroups.users.list`` (cached).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.kernel.errors import ConfigError
from bot.kernel.validation import format_loc

log = logging.getLogger(__name__)

MODEL_OWNER = "model-owner"
SERVICE_OWNER = "service-owner"  # the owner group of the incident's service in the catalog
ROLES = frozenset({MODEL_OWNER, SERVICE_OWNER})
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


class PolicyError(ConfigError, ValueError):
    pass


def _check_approvers(v: tuple[str, ...]) -> tuple[str, ...]:
    for a in v:
        if a not in ROLES and not USER_ID.match(a) and not GROUP_ID.match(a):
            raise ValueError(
                f"'{a}' is not a Slack user id (U…/W…), a user group id (S…), 'model-owner' or 'service-owner'"
            )
    return v


class Rule(BaseModel):
    """The effective rule for one action (every field filled)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    approvers: tuple[str, ...] = ()
    approvals_required: int = Field(default=1, ge=1, le=10)
    ttl_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    services: tuple[str, ...] = ()  # empty: any service
    environments: tuple[str, ...] = ()  # empty: any environment
    rate_limit_per_hour: int = Field(default=10, ge=0)  # runs per hour per service and action type; 0: none

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _check_approvers(v)


class _Entry(BaseModel):
    """An entry under ``actions``/``types``: any subset of a Rule's fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    approvers: tuple[str, ...] | None = None
    approvals_required: int | None = Field(default=None, ge=1, le=10)
    ttl_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    services: tuple[str, ...] | None = None
    environments: tuple[str, ...] | None = None
    rate_limit_per_hour: int | None = Field(default=None, ge=0)

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else _check_approvers(v)


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    defaults: Rule = Rule()
    actions: dict[str, _Entry] = Field(default_factory=dict)
    types: dict[str, _Entry] = Field(default_factory=dict)

    def rule_for(self, *, action_id: str, action_type: str, runbook_approvers: tuple[str, ...] = ()) -> Rule:
        entry = self.actions.get(action_id) or self.types.get(action_type)
        fields = self.defaults.model_dump()
        if not self.defaults.approvers:
            fields["approvers"] = tuple(runbook_approvers)
        if entry is not None:
            fields.update({k: v for k, v in entry.model_dump().items() if v is not None})
        return Rule.model_validate(fields)

    def approver_entries(self) -> set[str]:
        """Every approver entry named anywhere in the policy (user ids, group ids, ``model-owner``)."""
        entries: list[Rule | _Entry] = [self.defaults, *self.actions.values(), *self.types.values()]
        return {a for e in entries for a in (e.approvers or ())}


def load_policy(path: Path | None, *, action_types: set[str] | None = None) -> Policy:
    """The policy at ``path`` (None: defaults only). Raises PolicyError naming the file and the field."""
    if path is None:
        return Policy()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found (POLICY_PATH)") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: must be a mapping with 'defaults', 'actions' and/or 'types'")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PolicyError(f"{path}: {format_loc(err['loc'], empty='top level')}: {err['msg']}") from None
    if action_types is not None:
        for t in policy.types:
            if t not in action_types:
                raise PolicyError(
                    f"{path}: types.{t}: unknown action type (known: {', '.join(sorted(action_types))})"
                )
    return policy


class PolicySource:
    """The policy as it is now: ``policy.yml`` is re-read when its modification time or size changed,
    checked at most once per decision (``current()`` is one ``stat``). A changed file that does not
    validate is not used: decisions are refused, naming the error, until it is fixed (fail closed), while
    offers keep the last good policy (``last_good``) so incidents still post."""

    def __init__(
        self, path: Path | None, *, action_types: set[str] | None = None, policy: Policy | None = None
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._types = action_types
        self._stamp = self._stat()
        self._policy = policy if policy is not None else load_policy(self._path, action_types=action_types)
        self.error: str | None = None  # why the file as it is now cannot be used (None: it is in use)
        # A check beyond the file itself (set by the composition root: action ids must exist in runbooks)
        self.extra_check: Callable[[Policy], None] | None = None

    @classmethod
    def fixed(cls, policy: Policy) -> PolicySource:
        return cls(None, policy=policy)

    def _stat(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            st = self._path.stat()
        except OSError:
            return (-1, -1)
        return (st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        try:
            policy = load_policy(self._path, action_types=self._types)
            if self.extra_check is not None:
                self.extra_check(policy)
        except PolicyError as exc:
            if self.error is None:
                log.error("policy changed but cannot be used (decisions are refused until fixed): %s", exc)
            self.error = str(exc)
        else:
            log.info("policy reloaded from %s", self._path)
            self._policy, self.error = policy, None
        self._stamp = stamp

    def current(self) -> Policy:
        """The policy to decide with now; raises PolicyError when the file changed and does not validate."""
        self._refresh()
        if self.error is not None:
            raise PolicyError(f"{self.error}; approvals are refused until policy.yml is fixed")
        return self._policy

    def last_good(self) -> Policy:
        self._refresh()
        return self._policy


def check_action_ids(policy: Policy, known: set[str], *, path: Path | None) -> None:
    """A load-time check apart from ``load_policy`` (which needs no runbooks): every id under ``actions``
    must be the id of an action in some runbook, so a misspelt id is an error instead of a rule that never
    applies. ``known``: the action ids of the runbooks (stored, or about to be imported)."""
    unknown = sorted(set(policy.actions) - known)
    if unknown:
        listed = ", ".join(sorted(known)[:12]) or "none: import runbooks first"
        raise PolicyError(
            f"{path}: actions.{unknown[0]}: no runbook has an action with this id (known: {listed})"
        )
