"""``/incident kpi`` through the real Bolt app: a Block Kit summary in the channel, the chart uploaded with
files_upload_v2 (getUploadURLExternal → upload → completeUploadExternal) into the summary's thread."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from bot.kernel.db import transaction
from bot.kernel.db_types import utcnow
from bot.reports.kpi import percentile
from handlers.slack.subcommands.kpi import parse_args
from tests.apphelpers import App
from tests.kpi_seed import add_incident, m

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _command(app: App, text: str) -> int:
    body = urlencode(
        {
            "command": "/incident",
            "text": text,
            "user_id": "U0ONCALL1",
            "channel_id": "C0KPI",
            "team_id": "T0TEAM",
            "response_url": app.stub.base_url + "response",
            "trigger_id": "T0TRIGGER",
        }
    ).encode()
    return app.slack(body).status_code


def _seed_recent(app: App) -> None:
    now = utcnow()
    with transaction(app.rt.sessions) as s:
        add_incident(
            s,
            base=now - m(120),
            service="checkout",
            severity="critical",
            title="5xx",
            alerts=[{"starts": 0, "seen": 3, "deliveries": 4}],
            ack=5,
            resolved=30,
        )
        add_incident(
            s,
            base=now - m(60),
            service="payments",
            severity="warning",
            title="slow",
            alerts=[{"starts": 0, "seen": 10}],
            ack=12,
            resolved=20,
        )


def test_kpi_posts_summary_and_uploads_chart_in_thread(app: App) -> None:
    _seed_recent(app)
    assert _command(app, "kpi 30d") == 200
    post = [c for c in app.posts() if c.params.get("channel") == "C0KPI"][-1]
    text = "\n".join(b["text"]["text"] for b in post.params["blocks"] if b["type"] == "section")
    # 2 incidents: MTTD 3 and 10 min -> avg 6.5m; MTTR 30 and 20 -> 25.0m; 5 deliveries -> 60% reduction
    assert "*Incidents* 2" in text and "avg 6.5m" in text and "avg 25.0m" in text
    assert "5 deliveries → 2 alerts → 2 incidents: reduction 60%" in text
    context = str([b for b in post.params["blocks"] if b["type"] == "context"])
    assert "By service: checkout 1 (MTTR 30.0m) · payments 1 (MTTR 20.0m)" in context
    complete = app.stub.of("files.completeUploadExternal")[-1].params
    assert complete["channel_id"] == "C0KPI" and complete["thread_ts"] == post.response["ts"]
    file_id = complete["files"][0]["id"]
    assert app.stub.uploads[file_id].startswith(PNG_MAGIC) and len(app.stub.uploads[file_id]) > 10_000
    url_call = app.stub.of("files.getUploadURLExternal")[-1].params
    assert url_call["filename"] == "incident-kpis-30d.png" and int(url_call["length"]) == len(
        app.stub.uploads[file_id]
    )


def test_kpi_service_filter_and_bad_period(app: App) -> None:
    _seed_recent(app)
    assert _command(app, "kpi 7d payments") == 200
    post = app.posts()[-1]
    blocks_text = str(post.params["blocks"])
    assert "service payments" in blocks_text and "*Incidents* 1" in blocks_text
    assert _command(app, "kpi 5y") == 200
    reply = app.stub.of("response")[-1].params
    assert (
        "5y" in reply["text"]
        and "12h, 7d, 14d, 2w" in reply["text"]
        and reply["response_type"] == "ephemeral"
    )
    assert len(app.stub.of("files.completeUploadExternal")) == 1  # only the valid request got a chart
    assert _command(app, "kpi 14d") == 200  # the CLI's periods (issue 17): 14d was refused before
    assert len(app.stub.of("files.completeUploadExternal")) == 2
    assert app.stub.of("files.getUploadURLExternal")[-1].params["filename"] == "incident-kpis-14d.png"


def test_parse_args() -> None:
    assert parse_args("kpi") == ("7d", None)
    assert parse_args("kpi 90d checkout") == ("90d", "checkout")
    assert parse_args("kpi checkout") == ("7d", "checkout")
    # the CLI's periods, through the one parser (bot/kernel/periods.py)
    for period in ("12h", "14d", "2w", "45d", "30m"):
        assert parse_args(f"kpi {period} checkout") == (period, "checkout")
    for bad in ("5y", "0d", "99999w"):
        with pytest.raises(ValueError, match=f"period '{bad}'"):
            parse_args(f"kpi {bad}")
    assert percentile([0, 10], 0.9) == 9


def test_kpi_failure_is_logged_and_told(app: App, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    def broken(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("renderer down")

    monkeypatch.setattr("handlers.slack.subcommands.kpi.render_png", broken)
    assert _command(app, "kpi 7d") == 200
    told = app.stub.of("response")[-1].params[
        "text"
    ]  # the one error path, through the command's response_url
    assert "Something went wrong" in told
    eid = told.split("error id ")[1].split(")")[0]
    assert any(
        r.exc_info and "renderer down" in str(r.exc_info[1]) and eid in r.getMessage() for r in caplog.records
    )
