"""Fine-tune MiniLM on the public datasets beside the repo; held-out retrieval before/after and time.

    .venv/bin/python benchmarks/finetune.py                                  # both datasets, 20k pairs, 1 epoch
    .venv/bin/python benchmarks/finetune.py --datasets beauty --max-pairs 5000 --threads 1

For each dataset: mine at most ``--max-pairs`` positive pairs (Online Retail: items of the same invoice;
Amazon Beauty: consecutive items of a user's review sequence, titles only), hold out about 10% by anchor,
train one epoch with in-batch negatives, and score the held-out anchors against the whole catalogue
before and after (Recall@10, MRR). Results go to benchmarks/results/finetune.json; the models are
written to a temporary folder and deleted unless ``--keep DIR``. The load average at the start is
recorded: on a busy machine the times are pessimistic.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from shoprec.data.adapters import load_dataset
from shoprec.text.finetune import FinetuneSettings, finetune

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
RESULTS = REPO / "benchmarks" / "results" / "finetune.json"

DATASETS = {
    "online-retail": {
        "title": "UCI Online Retail (invoices as baskets, product descriptions)",
        "path": "online-retail-2010-2011/online_retail.parquet",
        "format": "online-retail",
        "session_gap": 1800.0,
        "max_length": 128,  # descriptions are at most 15 tokens
    },
    "beauty": {
        "title": "Amazon Beauty 5-core (titles only; consecutive items of a user's sequence)",
        "path": "amazon-beauty",
        "format": "folder",
        "session_gap": None,  # day-resolution timestamps: the whole sequence is one session
        "max_length": 64,  # covers 98% of titles (median 17 tokens); 128 makes a step about 5x slower
    },
}


def run_one(name: str, spec: dict, args: argparse.Namespace, models: Path) -> dict:
    started = time.perf_counter()
    dataset = load_dataset(args.shared / spec["path"], fmt=spec["format"])
    loaded = time.perf_counter() - started
    print(f"\n== {name}: {dataset!r} (loaded in {loaded:.1f} s)")
    settings = FinetuneSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_pairs=args.max_pairs,
        session_gap=spec["session_gap"],
        max_length=args.max_length or spec["max_length"],
        seed=args.seed,
        threads=args.threads,
    )
    result = finetune(dataset, models / name, settings=settings, progress=not args.quiet)
    for source, counts in result.pairs.items():
        print(f"  {source:<8} mined {counts['mined']:>10,}  unique {counts['unique']:>10,}  kept {counts['kept']:>7,}")
    print(f"  {result.pair_stats}")
    for metric in ("recall@10", "mrr"):
        print(f"  {metric:<10} before {result.before[metric]:.4f}  after {result.after[metric]:.4f}")
    print("  seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()))
    record = result.to_dict()
    record.pop("out_dir")
    return {
        "title": spec["title"],
        "dataset": {"users": dataset.n_users, "items": dataset.n_items, "events": len(dataset)},
        "load_seconds": loaded,
        **record,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated: {', '.join(DATASETS)}")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder of the public datasets")
    parser.add_argument("--max-pairs", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=None, help="tokens per text (default: per dataset)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="keep the fine-tuned models in this folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default: {RESULTS})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    runs = json.loads(args.out.read_text()).get("runs", {}) if args.out.is_file() else {}  # keep other datasets
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shoprec-finetune-") as scratch:
        models = args.keep or Path(scratch)
        for name in names:
            machine = {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            }
            runs[name] = {**run_one(name, DATASETS[name], args, models), "machine": machine}
            args.out.write_text(json.dumps({"runs": runs}, indent=2))  # after each dataset
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
