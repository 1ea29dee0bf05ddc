"""Priority P1–P4 from the incident's severity and its service's tier and lifecycle in the catalog.

The severity gives the base (critical P1, high P2, warning P3, info P4); a tier-1 service raises it one
step, tier 3 or lower lowers it one step; an ``experimental`` or ``deprecated`` service lowers it one step;
clamped to P1–P4. A service not in the catalog keeps the base. The table is in the README (Priority).

Reminder and escalation timing scale with it (``TIMING``): a P1 is reminded at a third of
ACK_REMINDER_MINUTES / ACK_ESCALATION_MINUTES, a P3 at twice, a P4 is reminded at four times and never
escalated.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.catalog.model import Service
from bot.intake.alerts import Severity

LOW_LIFECYCLES = frozenset({"experimental", "deprecated"})
BASE = {Severity.CRITICAL: 1, Severity.HIGH: 2, Severity.WARNING: 3, Severity.INFO: 4}


@dataclass(frozen=True)
class Timing:
    reminder_factor: float
    escalation_factor: float | None  # None: never escalated


TIMING = {
    1: Timing(1 / 3, 1 / 3),
    2: Timing(1.0, 1.0),
    3: Timing(2.0, 2.0),
    4: Timing(4.0, None),
}


def priority(severity: str, service: Service | None) -> int:
    """1 (P1, most urgent) … 4."""
    p = BASE[Severity.parse(severity)]
    if service is not None:
        if service.tier == 1:
            p -= 1
        elif service.tier is not None and service.tier >= 3:
            p += 1
        if (service.lifecycle or "").lower() in LOW_LIFECYCLES:
            p += 1
    return max(1, min(4, p))


def label(p: int) -> str:
    return f"P{p}"
