"""What a ``/incident`` subcommand is: its verbs, how it is written (help text, manifest usage hint), and what it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.service import IncidentService


@dataclass(frozen=True)
class Call:
    """One ``/incident <verb> ...`` as the subcommand sees it."""

    verb: str
    args: list[str]  # the words after the verb
    user_id: str
    channel_id: str
    respond: Respond
    client: WebClient
    help_text: str  # the whole /incident help, for a subcommand that was given the wrong arguments


@dataclass(frozen=True)
class Subcommand:
    verbs: tuple[str, ...]
    usage: tuple[str, ...]  # how each form is written: "show <id>" (help text and the manifest's usage hint)
    help: str  # what it does, one line
    run: Callable[[IncidentService, Call], None]
    lazy: bool = False  # slow work (e.g. a chart): acknowledged at once and run after the ack
