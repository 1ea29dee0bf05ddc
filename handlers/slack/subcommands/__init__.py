"""``/incident`` subcommands: one module each, listed once in ``SUBCOMMANDS``. The table is all there is: the
listeners (handlers/slack/commands.py), ``/incident help`` and the manifest's usage hint are made from it."""

from __future__ import annotations

from handlers.slack.subcommands import freeze, kpi, listing
from handlers.slack.subcommands.base import Call, Subcommand

SUBCOMMANDS: tuple[Subcommand, ...] = (
    listing.LIST,
    listing.SHOW,
    kpi.KPI,
    freeze.FREEZE,
)


def help_text() -> str:
    lines = [f"• {' / '.join(f'`{u}`' for u in sub.usage)} {sub.help}" for sub in SUBCOMMANDS]
    return "\n".join(["*/incident* commands:", *lines, "• `help`"])


def usage_hint() -> str:
    """The slash command's usage hint in manifest.yml (a test keeps the two equal)."""
    return " | ".join([*(u for sub in SUBCOMMANDS for u in sub.usage), "help"])


__all__ = ["SUBCOMMANDS", "Call", "Subcommand", "help_text", "usage_hint"]
