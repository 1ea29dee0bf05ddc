"""Incident buttons: Acknowledge, Resolve (opens an RCA modal), Add RCA note (after a resolve by the source),
and 👍/👎 on suggestions. Modal submissions are checked in their ack, so a stale modal answers with
``response_action: errors`` shown in the modal itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.kernel.errors import DomainError
from bot.service import IncidentService
from handlers.blocks import approval as approval_blocks
from handlers.blocks.ids import (
    ActionId,
    CallbackId,
    InvalidValue,
    action_pattern,
    parse_feedback_value,
    parse_incident_value,
)
from handlers.slack.common import ack_only, clicked, user_errors


def _note(view: dict[str, Any]) -> str | None:
    return (view.get("state", {}).get("values", {}).get("rca", {}).get("rca_note", {}) or {}).get("value")


def register(app: App, service: IncidentService) -> None:
    guarded = user_errors(app.client)

    @guarded
    def acknowledge(body: dict[str, Any]) -> None:
        user, _, value = clicked(body)
        service.acknowledge(incident_id=parse_incident_value(value), user_id=user)

    def modal_opener(rca_only: bool) -> Callable[..., None]:
        @guarded
        def open_modal(body: dict[str, Any], client: WebClient) -> None:
            _, _, value = clicked(body)
            incident = service.incident_for_modal(
                incident_id=parse_incident_value(value), resolving=not rca_only
            )
            client.views_open(
                trigger_id=body["trigger_id"], view=approval_blocks.resolve_modal(incident, rca_only=rca_only)
            )

        def listener(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
            ack()
            open_modal(body=body, client=client)

        return listener

    def view_ack(resolving: bool) -> Callable[..., None]:
        def ack_view(ack: Ack, body: dict[str, Any]) -> None:
            """Checked before the modal closes: a stale or bad submission is answered in the modal."""
            view = body.get("view") or {}
            try:
                incident_id = parse_incident_value(view.get("private_metadata", ""))
                service.incident_for_modal(incident_id=incident_id, resolving=resolving)
                if not resolving and not (_note(view) or "").strip():
                    raise InvalidValue("Write the root cause and what fixed it.")
            except DomainError as exc:  # InvalidValue too
                ack(response_action="errors", errors={"rca": str(exc)[:150]})
                return
            ack()  # closes the modal; the work (and the knowledge-base update) runs lazily

        return ack_view

    @guarded
    def resolve_from_modal(body: dict[str, Any]) -> None:
        view = body["view"]
        service.resolve(
            incident_id=parse_incident_value(view.get("private_metadata", "")),
            user_id=body["user"]["id"],
            rca_note=_note(view),
        )

    @guarded
    def rca_from_modal(body: dict[str, Any]) -> None:
        view = body["view"]
        service.add_rca_note(
            incident_id=parse_incident_value(view.get("private_metadata", "")),
            user_id=body["user"]["id"],
            note=_note(view) or "",
        )

    @guarded
    def feedback(body: dict[str, Any]) -> None:
        user, _, value = clicked(body)
        ref = parse_feedback_value(value)
        helpful = body["actions"][0]["action_id"].startswith(ActionId.FEEDBACK_UP)
        service.feedback(
            incident_id=ref.incident_id,
            kind=str(ref.kind),
            target_id=ref.target_id,
            user_id=user,
            helpful=helpful,
        )

    app.action(action_pattern(ActionId.ACK))(ack=ack_only, lazy=[acknowledge])
    app.action(action_pattern(ActionId.RESOLVE))(modal_opener(rca_only=False))
    app.action(action_pattern(ActionId.RCA_NOTE))(modal_opener(rca_only=True))
    app.view(str(CallbackId.RESOLVE_MODAL))(ack=view_ack(resolving=True), lazy=[resolve_from_modal])
    app.view(str(CallbackId.RCA_MODAL))(ack=view_ack(resolving=False), lazy=[rca_from_modal])
    app.action(action_pattern(ActionId.FEEDBACK_UP))(ack=ack_only, lazy=[feedback])
    app.action(action_pattern(ActionId.FEEDBACK_DOWN))(ack=ack_only, lazy=[feedback])
