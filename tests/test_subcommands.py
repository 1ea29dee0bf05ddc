"""The /incident subcommand table: one entry makes a subcommand (listener, help line, manifest usage hint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from bot.service import IncidentService
from handlers.slack import commands, subcommands
from handlers.slack.subcommands import SUBCOMMANDS, Call, Subcommand, help_text, usage_hint
from tests.apphelpers import running_app

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"


def _command(app: Any, text: str) -> None:
    body = urlencode(
        {
            "command": "/incident",
            "text": text,
            "user_id": "U0ONCALL1",
            "channel_id": "C0INCIDENTS",
            "team_id": "T0TEAM",
            "response_url": app.stub.base_url + "response",
            "trigger_id": "T0TRIGGER",
        }
    ).encode()
    assert app.slack(body).status_code == 200


def test_manifest_usage_hint_and_help_come_from_the_table() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    [slash] = manifest["features"]["slash_commands"]
    assert slash["usage_hint"] == usage_hint()
    for sub in SUBCOMMANDS:
        for usage in sub.usage:
            assert f"`{usage}`" in help_text() and usage in usage_hint()


def test_a_new_table_entry_is_served_and_listed(
    db_url: str, fake_encoder: Any, target: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def count(service: IncidentService, call: Call) -> None:
        call.respond(
            f"{len(service.open_incidents())} open ({' '.join(call.args)})", response_type="ephemeral"
        )

    extra = Subcommand(
        verbs=("count",), usage=("count [note]",), help="how many incidents are open", run=count
    )
    table = (*SUBCOMMANDS, extra)
    monkeypatch.setattr(subcommands, "SUBCOMMANDS", table)
    monkeypatch.setattr(commands, "SUBCOMMANDS", table)
    with running_app(db_url, fake_encoder, target) as app:
        app.sample("alertmanager", "alertmanager_checkout.json")
        _command(app, "count now")
        assert app.stub.of("response")[-1].params["text"] == "1 open (now)"
        _command(app, "nonsense")
        assert "`count [note]` how many incidents are open" in app.stub.of("response")[-1].params["text"]
    assert usage_hint().endswith("count [note] | help")


def test_show_bounds_the_id_it_is_given(app: Any) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    _command(app, "show #1")
    assert app.stub.of("response")[-1].params["text"].startswith("*#1 ")
    _command(app, "show " + "9" * 5000)  # no integer overflow, no 500: just not an incident
    assert app.stub.of("response")[-1].params["text"].startswith("No incident #999")
    _command(app, "show x")
    assert app.stub.of("response")[-1].params["text"] == help_text()
