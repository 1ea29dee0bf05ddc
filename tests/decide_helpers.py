"""Shared by the decision tests (policy at the moment of decision, limits under concurrency, keys across
deployments): a runbook with several webhook actions matched by alert name, alerts for any service, the
approval prompts of a request, and a second runtime (replica) on the same database."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bot.kernel.config import SAMPLE_DATA
from incident_bot.demo.slack_stub import ApiCall, SlackStub
from incident_bot.runtime import build_runtime
from retrieval.encoder import Encoder
from tests.apphelpers import App, InlineExecutor

ALERT = "ServiceOverloaded"
CHECKOUT = json.loads((SAMPLE_DATA / "alerts" / "alertmanager_checkout.json").read_text())


def write_runbook(directory: Path, *, actions: int = 8) -> Path:
    """One runbook matched by alert name (so its actions are offered for any service), ``actions`` webhook
    actions ``act-0``… that name no service."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "---",
        "id: overload",
        "title: Service overloaded",
        f"alert_names: [{ALERT}]",
        "steps:",
        "  - Shed load",
        "actions:",
    ]
    for i in range(actions):
        lines += [
            f"  - id: act-{i}",
            f"    title: Shed load step {i}",
            "    type: webhook",
            f"    url: /actions/shed-{i}",
            f"    params: {{step: {i}}}",
        ]
    lines += ["---", "# Service overloaded", "", "Shed load, then find out why it is overloaded.", ""]
    (directory / "overload.md").write_text("\n".join(lines), encoding="utf-8")
    return directory


def overload_alert(service: str, *, env: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(CHECKOUT)
    body["groupKey"] = f'{{}}:{{service="{service}"}}'
    body["groupLabels"] = {"service": service}
    body["commonLabels"] = {"service": service, "severity": "critical"}
    alert = body["alerts"][0]
    alert.pop("fingerprint", None)
    alert["labels"] = {"alertname": ALERT, "service": service, "severity": "critical"}
    if env:
        alert["labels"]["environment"] = env
    alert["annotations"] = {"summary": f"{service} is overloaded", "description": f"{service} sheds requests"}
    body["alerts"] = [alert]
    return body


def incident_id(app: App, service: str) -> int:
    from sqlalchemy import select

    from bot.kernel.models import Incident

    with app.rt.sessions() as s:
        found = s.scalar(select(Incident.id).where(Incident.service == service))
    assert found is not None, f"no incident for {service}"
    return int(found)


def prompt_of(stub: SlackStub, request_id: int) -> ApiCall:
    return next(
        c
        for c in stub.of("chat.postMessage")
        if str(c.params.get("text", "")).endswith(f"(request #{request_id})")
        and str(c.params.get("text", "")).startswith("Approval needed")
    )


def concurrently(calls: list[Callable[[], object]]) -> list[object]:
    """Start every call at the same moment (a barrier), wait for all; re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@contextmanager
def replica(app: App, encoder: Encoder) -> Iterator[App]:
    """A second runtime on the same database and Slack stand-in (another replica: its own engine, pools,
    outbox and Bolt app)."""
    rt = build_runtime(app.rt.settings, encoder=encoder, listener_executor=InlineExecutor())
    rt.kb.load()
    try:
        with TestClient(rt.http) as client:
            yield App(rt, client, app.stub)
    finally:
        rt.close()
