"""Content grouping on loghub-2k: Grouping Accuracy (GA) of our template miner vs drain3, per system.

Our grouping is the one triage does (bot/triage/templates.py): messages in order, each joins the first existing
group whose stored template merges with its masked text (the group keeps the merged template), else it
starts a group. Triage also limits candidates to the 20 newest open incidents of one service; the benchmark
compares against every group (a log file is one "service"), which is the harder case for precision.

GA (Zhu et al., ICSE-SEIP 2019, logparser's evaluator): a message is grouped correctly iff its predicted
group holds exactly the messages of its ground-truth event; GA = correctly grouped / all messages.

Baseline in the same run: drain3's ``TemplateMiner`` with its default configuration (no masking).

Honest measurement: the systems are split (alphabetical order, alternate) into a tuning half and a
held-out half, fixed before any tuning. The masking rules and the word weight of ``merge`` were chosen
looking only at the tuning half's errors; one exception, the calendar names (``Sun``, ``Jul``), was added
after the held-out half had been measured (Linux), so the held-out figure of the shipped miner is no longer
a clean one: benchmarks/README.md gives the clean pre-registered figure beside it. The merge threshold (0.8)
is also checked by 2-fold cross-validation (chosen on one half, measured on the other, both ways;
``two_fold_cv``), and so are the threshold and the word weight chosen together
(``two_fold_cv_threshold_and_word_weight``, which also lists each half's GA per word weight at the shipped
threshold).

Usage: ``.venv/bin/python benchmarks/loghub_grouping.py [--data DIR] [--systems HDFS,Apache]``
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.common import data_dir
from bot.triage import templates

SYSTEMS = sorted(
    [
        "Android",
        "Apache",
        "BGL",
        "HDFS",
        "HPC",
        "Hadoop",
        "HealthApp",
        "Linux",
        "Mac",
        "OpenSSH",
        "OpenStack",
        "Proxifier",
        "Spark",
        "Thunderbird",
        "Windows",
        "Zookeeper",
    ]
)
TUNING = SYSTEMS[0::2]  # decided before any tuning; the miner's rules were tuned on these only
HELD_OUT = SYSTEMS[1::2]


def load(folder: Path, system: str) -> tuple[list[str], list[str]]:
    path = folder / f"{system}_2k.log_structured_corrected.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def grouping_accuracy(truth: Sequence[str], predicted: Sequence[object]) -> float:
    """logparser's definition: a predicted cluster is correct iff it is exactly one ground-truth event."""
    truth_sizes = Counter(truth)
    members: dict[object, list[int]] = defaultdict(list)
    for i, p in enumerate(predicted):
        members[p].append(i)
    correct = 0
    for idx in members.values():
        events = {truth[i] for i in idx}
        if len(events) == 1 and truth_sizes[truth[idx[0]]] == len(idx):
            correct += len(idx)
    return correct / len(truth) if truth else 0.0


def ours(
    messages: Sequence[str],
    threshold: float = templates.THRESHOLD,
    word_weight: float = templates.WORD_WEIGHT,
) -> list[int]:
    """First-fit against stored templates, exactly as triage merges an alert into an open incident.
    Groups are bucketed by token count only to skip comparisons ``merge`` always refuses (lengths differ),
    so the result equals trying every group in creation order."""
    groups: dict[int, list[tuple[int, templates.Template]]] = defaultdict(
        list
    )  # by token count (merge needs equal)
    out: list[int] = []
    next_id = 0
    for text in messages:
        t = templates.mask(text)
        bucket = groups[len(t)]
        for k, (gid, stored) in enumerate(bucket):
            merged = templates.merge(stored, t, threshold=threshold, word_weight=word_weight)
            if merged is not None:
                bucket[k] = (gid, merged)
                out.append(gid)
                break
        else:
            bucket.append((next_id, t))
            out.append(next_id)
            next_id += 1
    return out


def drain3_default(messages: Sequence[str]) -> list[int]:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    logging.getLogger("drain3").setLevel(logging.WARNING)
    miner = TemplateMiner(config=TemplateMinerConfig())
    return [miner.add_log_message(m)["cluster_id"] for m in messages]


def run(folder: Path, systems: Sequence[str]) -> dict[str, object]:
    methods: dict[str, Callable[[Sequence[str]], list[int]]] = {"ours": ours}
    try:
        import drain3  # noqa: F401

        methods["drain3_default"] = drain3_default
    except ImportError:
        pass
    published = _published(folder)
    per: dict[str, dict[str, float | None]] = {}
    seconds: dict[str, float] = defaultdict(float)
    for system in systems:
        messages, truth = load(folder, system)
        row: dict[str, float | None] = {}
        for name, fn in methods.items():
            started = time.perf_counter()
            row[name] = round(grouping_accuracy(truth, fn(messages)), 4)
            seconds[name] += time.perf_counter() - started
        row["published_drain"] = published.get(system)
        per[system] = row

    def mean(name: str, subset: Sequence[str]) -> float | None:
        vals = [per[s][name] for s in subset if s in per and per[s].get(name) is not None]
        return round(statistics.fmean(vals), 4) if vals else None  # type: ignore[arg-type]

    halves = {"tuning": TUNING, "held_out": HELD_OUT, "all": list(systems)}
    full = set(systems) == set(SYSTEMS)
    return {
        "shipped_threshold": templates.THRESHOLD,
        "two_fold_cv": cross_validate(folder) if full else None,
        "shipped_word_weight": templates.WORD_WEIGHT,
        "two_fold_cv_threshold_and_word_weight": cross_validate_joint(folder) if full else None,
        "benchmark": "loghub-2k content grouping (GA)",
        "split": {"tuning": TUNING, "held_out": HELD_OUT},
        "per_system": per,
        "mean": {
            half: {name: mean(name, subset) for name in [*methods, "published_drain"]}
            for half, subset in halves.items()
        },
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "messages": 2000 * len(systems),
        "note": "published_drain: Drain with per-dataset tuning on the original (uncorrected) loghub-2k; "
        "ours tries every group of its file, oldest first (triage: the 20 most recently active open "
        "incidents of the service, most recent first); held_out is not clean for the shipped miner (calendar names, and "
        "wildcard-and-punctuation tokens as variables, were added after reading held-out errors; the clean "
        "lineage is 0.775, see benchmarks/README.md)",
    }


GRID = (0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def cross_validate(folder: Path) -> dict[str, object]:
    """The merge threshold chosen on one half, GA reported on the other (both ways): no figure here is
    measured on the systems its threshold was chosen on."""
    data = {s: load(folder, s) for s in SYSTEMS}
    ga = {(th, s): grouping_accuracy(data[s][1], ours(data[s][0], th)) for th in GRID for s in SYSTEMS}
    folds = {}
    for name, tune, test in (
        ("tune_on_tuning_half", TUNING, HELD_OUT),
        ("tune_on_held_out_half", HELD_OUT, TUNING),
    ):
        best = max(GRID, key=lambda th: statistics.fmean(ga[(th, s)] for s in tune))
        folds[name] = {
            "threshold": best,
            "ga_on_other_half": round(statistics.fmean(ga[(best, s)] for s in test), 4),
        }
    fold_means = [f["ga_on_other_half"] for f in folds.values()]
    return {
        **folds,
        "mean_out_of_fold": round(statistics.fmean(fold_means), 4),
        "grid": {str(th): round(statistics.fmean(ga[(th, s)] for s in SYSTEMS), 4) for th in GRID},
    }


WORD_WEIGHTS = (1.0, 2.0, 3.0, 5.0)


def cross_validate_joint(folder: Path) -> dict[str, object]:
    """Threshold and word weight chosen together on one half (the pair with the best mean GA there; ties go
    to the first in grid order), GA reported on the other half, both ways."""
    data = {s: load(folder, s) for s in SYSTEMS}
    pairs = [(th, ww) for th in GRID for ww in WORD_WEIGHTS]
    ga = {(p, s): grouping_accuracy(data[s][1], ours(data[s][0], *p)) for p in pairs for s in SYSTEMS}
    folds = {}
    for name, tune, test in (
        ("tune_on_tuning_half", TUNING, HELD_OUT),
        ("tune_on_held_out_half", HELD_OUT, TUNING),
    ):
        best = max(pairs, key=lambda p: statistics.fmean(ga[(p, s)] for s in tune))
        folds[name] = {
            "threshold": best[0],
            "word_weight": best[1],
            "ga_on_same_half": round(statistics.fmean(ga[(best, s)] for s in tune), 4),
            "ga_on_other_half": round(statistics.fmean(ga[(best, s)] for s in test), 4),
        }
    fold_means = [f["ga_on_other_half"] for f in folds.values()]
    return {
        **folds,
        "mean_out_of_fold": round(statistics.fmean(fold_means), 4),
        "word_weight_at_shipped_threshold": {
            str(ww): {
                half: round(statistics.fmean(ga[((templates.THRESHOLD, ww), s)] for s in subset), 4)
                for half, subset in (("tuning", TUNING), ("held_out", HELD_OUT), ("all", SYSTEMS))
            }
            for ww in WORD_WEIGHTS
        },
    }


def _published(folder: Path) -> dict[str, float]:
    path = folder / "published_GA_zhu2019.csv"
    if not path.exists():
        return {}
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
    ]
    rows = list(csv.DictReader(lines))
    drain = next((r for r in rows if r.get("tool") == "Drain"), None)
    return {k: float(v) for k, v in (drain or {}).items() if k in SYSTEMS and v}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="the shared data folder (default ../shared/data)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    args = ap.parse_args(argv)
    folder = data_dir(args.data) / "loghub_2k"
    systems = [s for s in args.systems.split(",") if s]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        ap.error(f"--systems: unknown {', '.join(unknown)} (known: {', '.join(SYSTEMS)})")
    print(json.dumps(run(folder, systems), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
