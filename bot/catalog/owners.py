"""The ``service-owner`` approver role: the members of the Slack user group that owns the incident's service
in the catalog (never taken from an alert payload). Fails closed: no catalog entry, no owner group, or a
failed lookup resolves to nobody.

Wired by the composition root (incident_bot/runtime.py) into ``Remediation(service_owners=...)``;
``bot.remediation.directory.resolve_approvers`` resolves the role for the incident's service at each decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.catalog.model import Catalog

SERVICE_OWNER = "service-owner"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def service_owner_members(
    catalog: Catalog, service: str | None, members: Callable[[str], list[str]]
) -> list[str]:
    """Slack user ids of the owner group of ``service`` (``members`` expands a group id, cached upstream)."""
    entry = catalog.get(service)
    if entry is None or not entry.owner_group:
        return []
    return list(dict.fromkeys(u for u in members(entry.owner_group) if _USER_ID.match(u)))
