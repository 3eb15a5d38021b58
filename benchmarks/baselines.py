"""Baselines on the public datasets beside the repo; results go to docs/benchmarks.md.

    .venv/bin/python benchmarks/baselines.py                 # all datasets, tuned on validation
    .venv/bin/python benchmarks/baselines.py --datasets beauty --no-tune

For each dataset, each model's settings are chosen on the validation target (second-last item,
or the window before the test window) from a small grid, then the chosen settings are fitted on
the test split's training part and scored once on the test target. Full-catalogue ranking only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

from shoprec.data.adapters import load_dataset
from shoprec.eval import evaluate, format_table, leave_last_out, temporal_split
from shoprec.models import create_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
MODELS = ("popularity", "trending", "itemknn", "als", "ease")
KS = (5, 10, 20)

# Grids searched on the validation target; the first entry of each is the model's default.
GRIDS: dict[str, dict[str, list]] = {
    "trending": {"window_days": [7.0, 30.0, 90.0]},
    "itemknn": {"neighbors": [100], "shrinkage": [50.0, 20.0, 0.0]},
    "als": {"embedding_size": [256, 128], "alpha": [20.0, 40.0]},
    "ease": {"reg": [100.0, 50.0, 250.0, 500.0]},
}

DATASETS = {
    "beauty": {
        "title": "Amazon Beauty (parquet folder, with titles)",
        "path": "amazon-beauty",
        "format": "folder",
        "splits": [("leave-last-out", {})],
    },
    "beauty-s3rec": {
        "title": "Amazon Beauty, S3-Rec file (s3rec_Beauty.txt)",
        "path": "amazon-beauty/s3rec_Beauty.txt",
        "format": "s3rec",
        "splits": [("leave-last-out", {})],
    },
    "online-retail": {
        "title": "UCI Online Retail (temporal, last 30 days = test)",
        "path": "online-retail-2010-2011/online_retail.parquet",
        "format": "online-retail",
        "splits": [("temporal", {"variant": "repeat"}), ("temporal", {"variant": "discovery"})],
    },
}


def make_split(dataset, protocol: str, options: dict, stage: str):
    if protocol == "leave-last-out":
        return leave_last_out(dataset, stage=stage)
    return temporal_split(dataset, test_days=30, stage=stage, **options)


def grid(name: str) -> list[dict]:
    spec = GRIDS.get(name, {})
    keys = list(spec)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*spec.values())] or [{}]


def tune(dataset, protocol: str, options: dict, names: list[str], enabled: bool) -> dict[str, dict]:
    """Best settings per model by validation NDCG@10 (the grid's first entry when disabled)."""
    chosen: dict[str, dict] = {}
    valid = make_split(dataset, protocol, options, "valid") if enabled else None
    for name in names:
        candidates = grid(name)
        if not enabled or len(candidates) == 1:
            chosen[name] = candidates[0]
            continue
        runs = {json.dumps(c): create_model(name, **c) for c in candidates}
        result = evaluate(runs, valid, ks=(10,), progress=False)
        best = max(result.models, key=lambda key: result.models[key].metrics["ndcg@10"])
        chosen[name] = json.loads(best)
        scores = ", ".join(f"{k}: {v.metrics['ndcg@10']:.4f}" for k, v in result.models.items())
        print(f"  tuned {name} on validation -> {best}   ({scores})")
    return chosen


def run_dataset(key: str, shared: Path, names: list[str], tune_enabled: bool, out: Path) -> list[dict]:
    spec = DATASETS[key]
    started = time.perf_counter()
    dataset = load_dataset(shared / spec["path"], fmt=spec["format"])
    load_seconds = time.perf_counter() - started
    print(f"{key}: {dataset!r} loaded in {load_seconds:.1f} s")
    runs = []
    for protocol, options in spec["splits"]:
        settings = tune(dataset, protocol, options, names, tune_enabled)
        split = make_split(dataset, protocol, options, "test")
        models = {name: create_model(name, **settings[name]) for name in names}
        result = evaluate(models, split, ks=KS)
        label = f"{key}-{protocol}" + (f"-{options['variant']}" if options.get("variant") else "")
        print(format_table(result))
        record = {
            "key": label,
            "title": spec["title"],
            "protocol": protocol,
            "options": options,
            "settings": settings,
            "tuned_on_validation": tune_enabled,
            "result": result.to_dict(),
            "dataset": dataset.describe(),
            "ingest": dataset.report.to_dict(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        (out / f"{label}.json").write_text(json.dumps(record, indent=2, default=float))
        runs.append(record)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder of the public datasets")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-tune", action="store_true", help="use each model's default settings")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.models.split(",")
    started = time.perf_counter()
    for key in args.datasets.split(","):
        run_dataset(key, args.shared, names, not args.no_tune, args.out)
    meta = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "total_seconds": time.perf_counter() - started,
        "command": " ".join(["python benchmarks/baselines.py", *sys.argv[1:]]),
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    print(f"done in {meta['total_seconds']:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
