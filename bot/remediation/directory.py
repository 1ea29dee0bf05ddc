"""Turning a rule's approver entries into Slack user ids: ids as they are, ``model-owner`` from MODEL_OWNERS
(never from an alert payload), user groups (``S…``) through the chat directory, cached for a while."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.remediation.policy import GROUP_ID, MODEL_OWNER, USER_ID

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
        now = self._clock()
        with self._lock:
            hit = self._cache.get(group_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            users = [u for u in self._lookup(group_id) if USER_ID.match(u)]
        except Exception:
            log.exception("could not list members of user group %s; nobody from it can approve", group_id)
            return []
        with self._lock:
            self._cache[group_id] = (now, users)
        return users


def resolve_approvers(
    entries: tuple[str, ...] | list[str],
    *,
    model: str | None,
    model_owners: dict[str, list[str]],
    groups: GroupCache,
) -> list[str]:
    out: list[str] = []
    for a in entries:
        if a == MODEL_OWNER:
            out.extend(u for u in model_owners.get(model or "", []) if USER_ID.match(u))
        elif GROUP_ID.match(a):
            out.extend(groups.members(a))
        elif USER_ID.match(a):
            out.append(a)
    return list(dict.fromkeys(out))
