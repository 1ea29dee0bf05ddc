"""Remediation: "Request: <action>" posts an approval prompt; Approve runs the action once; Reject closes it."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.service import IncidentService
from handlers.blocks.ids import ActionId, action_pattern, parse_request_action_value, parse_request_value
from handlers.slack.common import ack_only, clicked, user_errors


def register(app: App, service: IncidentService) -> None:
    guarded = user_errors(app.client)

    @guarded
    def request(body: dict[str, Any]) -> None:
        user, _, value = clicked(body)
        ref = parse_request_action_value(value)
        service.request_action(incident_id=ref.incident_id, action_id=ref.action_id, user_id=user)

    @guarded
    def approve(body: dict[str, Any]) -> None:
        user, _, value = clicked(body)
        service.decide(request_id=parse_request_value(value), user_id=user, approve=True)

    @guarded
    def reject(body: dict[str, Any]) -> None:
        user, _, value = clicked(body)
        service.decide(request_id=parse_request_value(value), user_id=user, approve=False)

    app.action(action_pattern(ActionId.REQUEST))(ack=ack_only, lazy=[request])
    app.action(action_pattern(ActionId.APPROVE))(ack=ack_only, lazy=[approve])
    app.action(action_pattern(ActionId.REJECT))(ack=ack_only, lazy=[reject])
