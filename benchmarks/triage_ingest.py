"""Triage throughput in-process on a fresh migrated database (no HTTP, no Slack): prints JSON.

Workload: Alertmanager-style batches of 10 alerts, 500 fingerprints in 50 groups, with exact repeats,
content updates, resolves and flaps (fire again soon after resolving), plus one batch in 20 of free-text
alerts without a group key (grouping by content). Baseline in the same run: the bare database cost of the
same batches (one payload row + one alert row per alert, no lookups), so the ratio survives a noisy,
shared machine.

    .venv/bin/python benchmarks/triage_ingest.py [--alerts 20000] [--database-url sqlite:///...]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from bot.intake.alerts import Alert, AlertStatus, Severity  # noqa: E402
from bot.kernel.db import make_engine, make_sessionmaker, transaction, upgrade  # noqa: E402
from bot.kernel.models import AlertPayload, AlertRecord, Incident, NoiseCount  # noqa: E402
from bot.triage.engine import Triage  # noqa: E402
from bot.triage.policy import TriagePolicy  # noqa: E402


def workload(n: int, seed: int = 7) -> list[list[Alert]]:
    rng = random.Random(seed)
    status = {fp: "firing" for fp in range(500)}
    batches = []
    for b in range(n // 10):
        if b % 20 == 19:  # free text, no group key: content grouping
            batches.append(
                [
                    Alert(
                        source="generic",
                        name=f"disk {rng.randint(80, 99)}% on db-{rng.randint(1, 40)}",
                        status=AlertStatus.FIRING,
                        service="storage",
                        source_fingerprint=f"free-{b}-{i}",
                    )
                    for i in range(10)
                ]
            )
            continue
        group = rng.randrange(50)
        batch = []
        for i in range(10):
            fp = group * 10 + i
            roll = rng.random()
            if roll < 0.05:
                status[fp] = "resolved" if status[fp] == "firing" else "firing"  # resolves and flaps
            value = str(rng.randint(0, 3)) if roll > 0.8 else "0"  # 20 % content updates
            batch.append(
                Alert(
                    source="alertmanager",
                    name=f"Alert{group}",
                    status=AlertStatus(status[fp]),
                    severity=Severity.HIGH,
                    service=f"svc-{group}",
                    group_key=f"{{}}:{{g={group}}}",
                    labels={"alertname": f"Alert{group}", "pod": str(i)},
                    annotations={"value": value},
                    source_fingerprint=f"am-{fp}",
                )
            )
        batches.append(batch)
    return batches


def run_triage(url: str, batches: list[list[Alert]]) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    triage = Triage(window=timedelta(minutes=30), policy=TriagePolicy())
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    latencies = []
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        t = time.perf_counter()
        with transaction(sessions) as s:
            payload = AlertPayload(source="bench", body={})
            s.add(payload)
            s.flush()
            triage.ingest(session=s, alerts=batch, payload_id=payload.id, now=now + timedelta(seconds=i))
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    with sessions() as s:
        incidents = s.scalar(select(func.count()).select_from(Incident))
        deliveries = s.scalar(select(func.sum(NoiseCount.deliveries)))
    engine.dispose()
    latencies.sort()
    n = sum(len(b) for b in batches)
    return {
        "alerts_per_s": round(n / elapsed, 1),
        "batch_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "batch_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "incidents": int(incidents or 0),
        "deliveries_counted": int(deliveries or 0),
    }


def run_baseline(url: str, batches: list[list[Alert]]) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        inc = Incident(title="bench", severity="high", source="bench", group_key="bench")
        s.add(inc)
        s.flush()
        incident_id = inc.id
    start = time.perf_counter()
    for batch in batches:
        with transaction(sessions) as s:
            payload = AlertPayload(source="bench", body={})
            s.add(payload)
            s.flush()
            for a in batch:
                s.add(
                    AlertRecord(
                        incident_id=incident_id,
                        payload_id=payload.id,
                        fingerprint=a.fingerprint,
                        content_hash=a.content_hash,
                        source=a.source,
                        name=a.name,
                        status=a.status.value,
                        severity=a.severity.value,
                        service=a.service,
                        labels=dict(a.labels),
                        annotations=dict(a.annotations),
                    )
                )
    elapsed = time.perf_counter() - start
    engine.dispose()
    return {"alerts_per_s": round(sum(len(b) for b in batches) / elapsed, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=20000)
    ap.add_argument("--database-url", default=None, help="an empty database (default: temp SQLite files)")
    args = ap.parse_args()
    batches = workload(args.alerts)
    with tempfile.TemporaryDirectory() as tmp:
        triage_url = args.database_url or f"sqlite:///{tmp}/triage.db"
        base_url = f"sqlite:///{tmp}/baseline.db"
        baseline = run_baseline(base_url, batches)
        result = run_triage(triage_url, batches)
    print(
        json.dumps(
            {
                "alerts": sum(len(b) for b in batches),
                "batches": len(batches),
                "triage": result,
                "baseline_raw_inserts": baseline,
                "triage_vs_raw_inserts": round(result["alerts_per_s"] / baseline["alerts_per_s"], 3),
                "note": "in-process, one thread; shared 2-core machine: compare the ratio, not the figures",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
