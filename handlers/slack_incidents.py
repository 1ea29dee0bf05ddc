"""Incident buttons: Acknowledge, Resolve (opens an RCA modal), and 👍/👎 on suggestions."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.models import Incident
from bot.service import IncidentService
from handlers import blocks
from handlers.ids import ActionId, CallbackId, action_pattern, parse_feedback_value, parse_incident_value
from handlers.slack_common import ack_only, clicked, user_errors


def register(app: App, service: IncidentService) -> None:
    guarded = user_errors(service)

    @guarded
    def acknowledge(body: dict[str, Any]) -> None:
        user, _, value = clicked(body)
        service.acknowledge(incident_id=parse_incident_value(value), user_id=user)

    def open_resolve_modal(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        _, _, value = clicked(body)
        incident_id = parse_incident_value(value)
        with service.s.sessions() as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                return
            view = blocks.resolve_modal(incident)
        client.views_open(trigger_id=body["trigger_id"], view=view)

    def ack_view(ack: Ack) -> None:
        ack()  # closes the modal at once; the resolve (and the knowledge-base update) runs lazily

    @guarded
    def resolve_from_modal(body: dict[str, Any]) -> None:
        view = body["view"]
        incident_id = parse_incident_value(view.get("private_metadata", ""))
        note = (view.get("state", {}).get("values", {}).get("rca", {}).get("rca_note", {}) or {}).get("value")
        service.resolve(incident_id=incident_id, user_id=body["user"]["id"], rca_note=note)

    @guarded
    def feedback(body: dict[str, Any]) -> None:
        user, _, value = clicked(body)
        ref = parse_feedback_value(value)
        helpful = body["actions"][0]["action_id"].startswith(ActionId.FEEDBACK_UP)
        service.feedback(incident_id=ref.incident_id, kind=str(ref.kind), target_id=ref.target_id,
                         user_id=user, helpful=helpful)

    app.action(action_pattern(ActionId.ACK))(ack=ack_only, lazy=[acknowledge])
    app.action(action_pattern(ActionId.RESOLVE))(open_resolve_modal)
    app.view(str(CallbackId.RESOLVE_MODAL))(ack=ack_view, lazy=[resolve_from_modal])
    app.action(action_pattern(ActionId.FEEDBACK_UP))(ack=ack_only, lazy=[feedback])
    app.action(action_pattern(ActionId.FEEDBACK_DOWN))(ack=ack_only, lazy=[feedback])
