"""Logs an operator can ship: in JSON mode every line is JSON, lines carry request_id / incident_id / source,
each accepted batch, opened incident, click and action run is one INFO line, repeats are limited."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.kernel import logcontext
from bot.kernel.config import SAMPLE_DATA
from incident_bot.demo.slack_stub import ApiCall, SlackStub, block_action_body, find_button, signed_headers
from incident_bot.demo.webhook_target import WebhookTarget
from incident_bot.logging_setup import JsonFormatter, LogHandler, RepeatLimiter, configure, reset
from tests.apphelpers import App


# ---- the repeat limiter -------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, Clock]]:
    clock, out = Clock(), io.StringIO()
    handler = LogHandler(RepeatLimiter(window=60, clock=clock))
    handler.setStream(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot.test_logs")
    logger.addHandler(handler)
    logger.propagate, level = False, logger.level
    logger.setLevel(logging.INFO)
    try:
        yield logger, out, clock
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _fail(logger: logging.Logger, n: int) -> None:
    try:
        raise ConnectionRefusedError(f"database down (attempt {n})")
    except ConnectionRefusedError:
        logger.exception("outbox worker: claiming failed")


def test_the_same_error_is_written_once_per_window_then_counted(captured) -> None:  # type: ignore[no-untyped-def]
    logger, out, clock = captured
    for n in range(40):  # an outage: 40 tracebacks in 20 s
        _fail(logger, n)
        clock.t += 0.5
    logger.error("another error")  # a different message is not held back
    lines = _lines(out)
    assert [x["message"] for x in lines] == ["outbox worker: claiming failed", "another error"]
    assert "ConnectionRefusedError" in lines[0]["exc"]
    clock.t += 60  # the window ends: the next line of any kind brings the count out
    logger.warning("later")
    summary = _lines(out)[2]
    assert summary["repeated"] == 39 and summary["level"] == "ERROR"
    assert summary["message"] == "outbox worker: claiming failed … repeated 39 times in 60 s"
    assert "exc" not in summary
    assert _lines(out)[3]["message"] == "later"
    _fail(logger, 41)  # a new window: written in full again
    assert "exc" in _lines(out)[4]


def test_pending_counts_are_written_at_close_and_info_is_never_limited(captured) -> None:  # type: ignore[no-untyped-def]
    logger, out, _clock = captured
    for _ in range(3):
        logger.info("alert batch accepted")
        logger.warning("slow Slack")
    logger.handlers[0].close()
    messages = [x["message"] for x in _lines(out)]
    assert messages.count("alert batch accepted") == 3
    assert messages.count("slow Slack") == 1 and "slow Slack … repeated 2 times in 60 s" in messages


def test_numbers_do_not_make_an_error_new_but_different_words_do(captured) -> None:  # type: ignore[no-untyped-def]
    logger, out, _clock = captured
    for row in (12, 13, 14):
        logger.error("delivery of outbox row #%d failed after %.1f s", row, row / 10)
    logger.warning("runbook skipped: %s", "disk-full.md: actions[0].type: unknown executor 'webhok'")
    logger.warning("runbook skipped: %s", "pod-oom.md: front matter is not YAML")
    messages = [x["message"] for x in _lines(out)]
    assert messages == [
        "delivery of outbox row #12 failed after 1.2 s",
        "runbook skipped: disk-full.md: actions[0].type: unknown executor 'webhok'",
        "runbook skipped: pod-oom.md: front matter is not YAML",
    ]


def test_a_different_exception_type_is_a_different_error(captured) -> None:  # type: ignore[no-untyped-def]
    logger, out, _clock = captured
    for exc in (ValueError("a"), KeyError("b"), ValueError("c")):
        try:
            raise exc
        except Exception:
            logger.exception("job failed")
    assert len(_lines(out)) == 2


# ---- fields from the log context ----------------------------------------------------------------------
def test_context_fields_reach_lines_and_extra_wins(captured) -> None:  # type: ignore[no-untyped-def]
    logger, out, _clock = captured
    with logcontext.bound(request_id="r-1", source="alerts/generic"):
        logger.info("batch")
        logger.info("opened", extra={"incident_id": 7})
        with logcontext.bound(incident_id=3):
            logger.info("inner")
    logger.info("outside")
    a, b, c, d = _lines(out)
    assert (a["request_id"], a["source"], "incident_id" in a) == ("r-1", "alerts/generic", False)
    assert (b["incident_id"], b["request_id"]) == (7, "r-1")
    assert (c["incident_id"], c["request_id"]) == (3, "r-1")
    assert not {"request_id", "incident_id", "source"} & set(d)


def test_a_context_thread_pool_carries_the_submitters_context() -> None:
    pool = logcontext.ContextThreadPool(max_workers=1)
    try:
        with logcontext.bound(request_id="click-1", incident_id=4):
            seen = pool.submit(lambda: dict(logcontext.current())).result()
        assert seen == {"request_id": "click-1", "incident_id": 4}
        plain = pool.submit(lambda: dict(logcontext.current())).result()
        assert plain == {}  # nothing leaks from one task to the next
    finally:
        pool.shutdown()


def test_configure_routes_warnings_and_thread_crashes_as_json(capsys) -> None:  # type: ignore[no-untyped-def]
    configure(level="INFO", fmt="json")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("matplotlib-style warning", UserWarning, stacklevel=1)
        logging.getLogger("matplotlib.font_manager").warning("Matplotlib created a temporary cache directory")
        t = threading.Thread(target=lambda: 1 / 0, name="worker-x")
        t.start()
        t.join()
    finally:
        reset()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [x["logger"] for x in lines] == [
        "py.warnings",
        "matplotlib.font_manager",
        "incident_bot.logging_setup",
    ]
    assert "matplotlib-style warning" in lines[0]["message"]
    assert (
        lines[2]["message"] == "uncaught exception in thread worker-x"
        and "ZeroDivisionError" in lines[2]["exc"]
    )


# ---- the request id middleware (in-process app) -------------------------------------------------------
def test_every_response_has_a_request_id_and_a_sane_incoming_one_is_kept(app: App) -> None:
    own = app.client.get("/healthz").headers["X-Request-ID"]
    assert len(own) == 32 and own != app.client.get("/healthz").headers["X-Request-ID"]
    kept = app.client.get("/readyz", headers={"X-Request-ID": "lb-7f3a:42"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a:42"
    for hostile in ('x" injected="1', "a" * 200, "é".encode(), "-lead"):
        replaced = app.client.get("/healthz", headers={"X-Request-ID": hostile}).headers["X-Request-ID"]
        assert replaced != hostile and len(replaced) == 32
    refused = app.client.post("/alerts/generic", content=b"{}", headers={"X-Request-ID": "r-401"})
    assert refused.status_code == 401 and refused.headers["X-Request-ID"] == "r-401"  # errors too


# ---- `serve` as deployed: JSON mode, end to end --------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _click(client: httpx.Client, user: str, message: ApiCall, label: str) -> httpx.Response:
    body = block_action_body(
        user=user,
        button=find_button(message.params["blocks"], label),
        channel="C0INCIDENTS",
        message_ts=message.response["ts"],
    )
    return client.post("/slack/events", content=body, headers=signed_headers("sig", body))


@pytest.mark.slow
def test_serve_json_logs_every_line_with_ids(tmp_path: Path) -> None:
    port = _free_port()
    with SlackStub() as stub, WebhookTarget(secret="hmac") as target:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "SLACK_BOT_TOKEN": "xoxb-t",
            "SLACK_SIGNING_SECRET": "sig",
            "SLACK_API_URL": stub.base_url,
            "ALERT_WEBHOOK_TOKEN": "tok",
            "RUNBOOKS_DIR": str(SAMPLE_DATA / "runbooks"),
            "ACTION_BASE_URL": target.url,
            "EXECUTOR_HMAC_SECRET": "hmac",
            "HF_HUB_OFFLINE": "1",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "incident_bot", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", timeout=10, transport=httpx.HTTPTransport(retries=60)
            ) as client:
                _wait_up(client, proc)
                resp = client.post(
                    "/alerts/alertmanager",
                    content=(SAMPLE_DATA / "alerts" / "alertmanager_checkout.json").read_bytes(),
                    headers={
                        "Authorization": "Bearer tok",
                        "Content-Type": "application/json",
                        "X-Request-ID": "am-batch-1",
                    },
                )
                assert resp.status_code == 202 and resp.headers["X-Request-ID"] == "am-batch-1"
                calls = stub.wait_for(lambda cs: any(c.method == "chat.postMessage" for c in cs), timeout=60)
                post = next(c for c in calls if c.method == "chat.postMessage")
                request_click = _click(client, "U0ONCALL", post, "Request:")
                assert request_click.status_code == 200
                prompt = _wait_post(stub, lambda c: "Approve" in json.dumps(c.params.get("blocks", [])))
                approve_click = _click(client, "U0SRELEAD", prompt, "Approve")
                assert approve_click.status_code == 200
                _wait_post(
                    stub,
                    lambda c: (
                        "Restart PgBouncer" in c.params.get("text", "") and "ms" in c.params.get("text", "")
                    ),
                )
                metrics = client.get("/metrics").text  # as `serve` exports it: KPI gauges by the lease holder
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
    raw = err.decode().splitlines() + out.decode().splitlines()
    lines = []
    for line in raw:
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line that is not JSON: {line[:300]!r}")
    assert len(target.received) == 1  # the action really ran

    def one(logger: str, start: str) -> dict[str, Any]:
        found = [x for x in lines if x["logger"] == logger and x["message"].startswith(start)]
        assert len(found) == 1, (logger, start, [x["message"] for x in lines])
        assert found[0]["level"] == "INFO"
        return found[0]

    batch = one("handlers.http.app", "alert batch accepted from alertmanager: 2 alerts")
    assert (batch["request_id"], batch["source"]) == ("am-batch-1", "alerts/alertmanager")
    opened = one("bot.service", "incident #1 opened")
    assert (opened["incident_id"], opened["request_id"]) == (1, "am-batch-1")
    clicked = one("handlers.slack.clicks", "slack click 'remediation_request")
    assert clicked["incident_id"] == 1 and clicked["source"] == "slack"
    assert clicked["request_id"] == request_click.headers["X-Request-ID"]
    approved = one("handlers.slack.clicks", "slack click 'remediation_approve")
    assert approved["request_id"] == approve_click.headers["X-Request-ID"]
    ran = one("bot.remediation.flow", "action restart-pgbouncer (webhook) of request #1 succeeded")
    # the run happens in a lazy listener on Bolt's thread pool: the click's context came along
    assert (ran["incident_id"], ran["request_id"]) == (1, approve_click.headers["X-Request-ID"])
    assert not any("Loading weights" in x["message"] or "xoxb-t" in json.dumps(x) for x in lines)
    assert "incident_bot_kpi_exporter 1.0" in metrics
    assert 'incident_bot_kpi_incidents{service="",window="7d"} 1.0' in metrics
    promtool = shutil.which("promtool")
    if promtool is not None:  # tests/test_metrics.py says so when it is missing
        check = subprocess.run(
            [promtool, "check", "metrics"], input=metrics, capture_output=True, text=True, check=False
        )
        assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), (
            check.stdout + check.stderr
        )


def _wait_post(stub: SlackStub, pred: Any) -> ApiCall:
    calls = stub.wait_for(lambda cs: any(c.method == "chat.postMessage" and pred(c) for c in cs), timeout=30)
    return next(c for c in calls if c.method == "chat.postMessage" and pred(c))


def _wait_up(client: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(120):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            client.get("/healthz")
            return
        except httpx.ConnectError:
            continue
    raise AssertionError("serve did not come up")


def test_a_click_names_its_incident_when_its_value_does() -> None:
    from handlers.blocks.ids import (
        ActionId,
        FeedbackKind,
        feedback_value,
        incident_value,
        instance_id,
        request_action_value,
        request_value,
    )
    from handlers.slack.clicks import click_incident

    assert click_incident(str(ActionId.ACK), incident_value(7)) == 7
    assert click_incident(str(ActionId.REQUEST), request_action_value(8, "expand-volume")) == 8
    feedback = feedback_value(9, FeedbackKind.RUNBOOK, "disk-full")
    assert click_incident(instance_id(ActionId.FEEDBACK_DOWN, 2), feedback) == 9
    assert click_incident(str(ActionId.APPROVE), request_value(3)) is None  # a request id, not an incident
    assert click_incident(str(ActionId.ACK), "1; DROP TABLE") is None  # refused later, with a reason
    assert click_incident("not_ours", "1") is None
