"""The ``/incident`` slash command: each subcommand of the table (handlers/slack/subcommands/) gets a listener
matching its verbs; anything else is answered with the help made from the same table. Mentions get the help."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.service import IncidentService
from handlers.slack.common import user_errors
from handlers.slack.subcommands import SUBCOMMANDS, Call, Subcommand, help_text


def _verb(body: dict[str, Any]) -> str:
    words = (body.get("text") or "").split()
    return words[0].lower() if words else "help"


def register(app: App, service: IncidentService) -> None:
    register_mentions(app)
    guarded = user_errors(app.client)
    for sub in SUBCOMMANDS:  # Bolt runs the first matching listener: the catch-all help comes last
        _register(app, service, sub, guarded)

    @app.command("/incident")
    def incident_help(ack: Ack, respond: Respond) -> None:
        ack()
        respond(help_text(), response_type="ephemeral")


def _register(
    app: App,
    service: IncidentService,
    sub: Subcommand,
    guarded: Callable[[Callable[..., None]], Callable[..., None]],
) -> None:
    def matches(body: dict[str, Any]) -> bool:
        return _verb(body) in sub.verbs

    def run(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        words = (body.get("text") or "").split()
        sub.run(
            service,
            Call(
                verb=_verb(body),
                args=words[1:],
                user_id=str(body.get("user_id", "")),
                channel_id=str(body.get("channel_id", "")),
                respond=respond,
                client=client,
                help_text=help_text(),
            ),
        )

    if sub.lazy:

        def ack_now(ack: Ack) -> None:
            ack()

        app.command("/incident", matchers=[matches])(ack=ack_now, lazy=[guarded(run)])
        return

    def inline(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        run(body=body, respond=respond, client=client)  # what escapes reaches the one @app.error handler

    app.command("/incident", matchers=[matches])(inline)


def register_mentions(app: App) -> None:
    @app.event("app_mention")
    def mentioned(event: dict[str, Any], say: Any) -> None:
        say(text=help_text(), thread_ts=event.get("thread_ts") or event.get("ts"))
