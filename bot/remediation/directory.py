"""Turning a rule's approver entries into Slack user ids: ids as they are, ``model-owner`` from MODEL_OWNERS
(never from an alert payload), user groups (``S…``) through the chat directory, cached for a while."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.remediation.policy import GROUP_ID, MODEL_OWNER, SERVICE_OWNER, USER_ID

log = logging.getLogger(__name__)


class GroupCache:
    """Caches ``lookup(group_id) -> user ids``; a failed lookup is logged and resolves to nobody (fail closed)."""

    def __init__(
        self,
        lookup: Callable[[str], list[str]],
        *,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group_id: str) -> list[str]:
        return self.read(group_id)[0]

    def read(self, group_id: str) -> tuple[list[str], str | None]:
        """(members, None), or ([], why the group could not be read) — e.g. Slack's ``missing_scope``."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(group_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1], None
        try:
            users = [u for u in self._lookup(group_id) if USER_ID.match(u)]
        except Exception as exc:
            log.exception("could not list members of user group %s; nobody from it can approve", group_id)
            return [], str(exc) or type(exc).__name__
        with self._lock:
            self._cache[group_id] = (now, users)
        return users, None


def resolve_approvers(
    entries: tuple[str, ...] | list[str],
    *,
    model: str | None,
    model_owners: dict[str, list[str]],
    groups: GroupCache,
    problems: list[str] | None = None,
    service: str | None = None,
    service_owners: Callable[[str | None], list[str]] | None = None,
) -> list[str]:
    """The Slack user ids ``entries`` name now; why an entry named nobody is appended to ``problems``
    (shown on the prompt instead of a silent "none"). ``service-owner`` is the members of the owner group the
    service catalog gives the incident's ``service`` (``service_owners``; never from an alert)."""
    out: list[str] = []
    notes: list[str] = problems if problems is not None else []
    for a in entries:
        if a == SERVICE_OWNER:
            members = service_owners(service) if service_owners is not None else []
            if not members:
                notes.append(
                    f"service-owner: the service catalog gives {service or '(no service)'} no owner group "
                    "with members"
                )
            out.extend(u for u in members if USER_ID.match(u))
        elif a == MODEL_OWNER:
            owners = [u for u in model_owners.get(model or "", []) if USER_ID.match(u)]
            if not owners:
                notes.append(f"model-owner: MODEL_OWNERS names nobody for model {model or '(none)'}")
            out.extend(owners)
        elif GROUP_ID.match(a):
            users, error = groups.read(a)
            if error is not None:
                notes.append(f"user group {a} could not be read: {error}")
            elif not users:
                notes.append(f"user group {a} has no members")
            out.extend(users)
        elif USER_ID.match(a):
            out.append(a)
    return list(dict.fromkeys(out))
