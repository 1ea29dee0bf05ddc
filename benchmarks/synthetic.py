"""A deterministic synthetic incident corpus for the speed benchmark (not for quality figures)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from retrieval.types import Document

SERVICES = [
    "checkout",
    "payments",
    "auth",
    "search",
    "orders",
    "inventory",
    "kafka",
    "postgres",
    "redis",
    "gateway",
    "feature-store",
    "fraud-scorer",
    "notifications",
    "billing",
    "ingest",
    "cdn",
]
SYMPTOMS = [
    "5xx error rate above 5%",
    "p99 latency above 2 s",
    "connection pool exhausted",
    "pods OOMKilled",
    "disk usage above 95%",
    "consumer lag above 1M messages",
    "TLS certificate expired",
    "DNS resolution failures",
    "replication lag above 30 s",
    "queue depth growing",
    "CPU throttling",
    "cache hit rate dropped",
    "model precision dropped",
    "feature freshness above 6 h",
    "GC pauses",
]
CAUSES = [
    "a deploy doubled the worker count",
    "an index was dropped by a migration",
    "retention was raised",
    "a feature flag enabled a slow code path",
    "a node pool was drained",
    "a config typo",
    "a retry storm",
    "an expired credential",
    "a noisy neighbour on the shared cluster",
    "a schema change upstream",
    "traffic from a marketing campaign",
    "a kernel upgrade changed the default limits",
]
FIXES = [
    "rolled back the deploy",
    "recreated the index concurrently",
    "lowered retention and grew the volume",
    "disabled the flag",
    "scaled the node pool",
    "fixed the config and restarted",
    "added jittered backoff",
    "rotated the credential",
    "moved the job to a dedicated pool",
    "pinned the schema version",
    "raised the limits and added an alert",
]
WORDS = (
    "request requests error errors timeout timeouts upstream downstream replica primary leader follower "
    "broker partition shard node pod container worker thread heap memory socket handshake client server "
    "queue topic consumer producer batch job cron scheduler metric alert dashboard trace span log logs "
    "region zone cluster namespace deployment rollout canary release version config secret token"
).split()


def make_documents(n: int, *, seed: int = 7) -> list[Document]:
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    docs = []
    for i in range(n):
        svc, sym = rng.choice(SERVICES), rng.choice(SYMPTOMS)
        cause, fix = rng.choice(CAUSES), rng.choice(FIXES)
        filler = " ".join(rng.choices(WORDS, k=rng.randint(25, 60)))
        ver = f"v{rng.randint(1, 9)}.{rng.randint(0, 60)}"
        text = (
            f"{svc} alerted on {sym} after {ver} rolled out in {rng.choice(['eu-west-1', 'us-east-1', 'ap-south-1'])}. "
            f"On-call saw {filler}. Ticket {i} of the synthetic corpus."
        )
        docs.append(
            Document(
                id=f"SYN-{i}",
                title=f"{svc}: {sym}",
                text=text,
                service=svc,
                root_cause=cause,
                resolution=fix,
                created_at=start + timedelta(minutes=rng.randint(0, 1_500_000)),
            )
        )
    return docs


def make_queries(n: int, *, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SERVICES)} {rng.choice(SYMPTOMS)} after deploy {rng.choice(WORDS)}" for _ in range(n)
    ]


class RandomUnitEncoder:
    """Stored random unit vectors (deterministic per text): for search-latency runs at sizes where
    encoding every text on 2 cores would take too long. Never used for quality."""

    name = "random-unit-vectors"
    dim = 384

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out
