"""Sequential and graph models against the baselines, one run; results go to docs/benchmarks.md.

    .venv/bin/python benchmarks/sequential.py                          # everything (about 2 hours on 2 cores)
    .venv/bin/python benchmarks/sequential.py --runs beauty --models ease,sasrec-fused

Full-catalogue ranking only. Each (dataset, model) pair runs in a fresh Python process, so the
peak memory reported is that model's own (fit plus scoring every evaluated user). Neural models
stop early on their own held-out last training item; nothing here looks at the test target
before the final score. Settings are the models' defaults, chosen on the validation target
(second-last item; see docs/benchmarks.md for the runs behind them), plus the encoder's cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from docblock import write_block  # noqa: E402 (benchmarks/ is the script folder)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
DEFAULT_CACHE = Path(os.environ.get("SHOPREC_VECTOR_CACHE", REPO.parent / "cache" / "vectors"))
KS = (5, 10, 20)

MODELS: dict[str, tuple[str, dict]] = {
    "popularity": ("popularity", {}),
    "itemknn": ("itemknn", {}),
    "als": ("als", {}),
    "ease": ("ease", {}),
    "sasrec-id": ("sasrec", {"item_repr": "id"}),
    "sasrec-text": ("sasrec", {"item_repr": "text"}),
    "sasrec-fused": ("sasrec", {"item_repr": "fused"}),
    "gru4rec-fused": ("gru4rec", {"item_repr": "fused"}),
    "lightgcn-id": ("lightgcn", {"item_repr": "id"}),
    "lightgcn-fused": ("lightgcn", {"item_repr": "fused"}),
}
"""Label -> (registered model, settings). Text settings get ``cache_dir`` added."""

RUNS: dict[str, dict] = {
    "beauty": {
        "title": "Amazon Beauty with titles, leave-last-out",
        "path": "amazon-beauty",
        "format": "folder",
        "split": ("leave-last-out", {}),
        "models": list(MODELS),
    },
    "beauty-s3rec": {
        "title": "Amazon Beauty, S3-Rec file (ids only), leave-last-out",
        "path": "amazon-beauty/s3rec_Beauty.txt",
        "format": "s3rec",
        "split": ("leave-last-out", {}),
        "models": ["popularity", "ease", "sasrec-id", "lightgcn-id"],
    },
    "retail-repeat": {
        "title": "UCI Online Retail, last 30 days = test, repeat purchases count",
        "path": "online-retail-2010-2011/online_retail.parquet",
        "format": "online-retail",
        "split": ("temporal", {"variant": "repeat"}),
        "models": ["popularity", "als", "ease", "sasrec-fused", "gru4rec-fused", "lightgcn-fused"],
    },
    "retail-discovery": {
        "title": "UCI Online Retail, last 30 days = test, new items only",
        "path": "online-retail-2010-2011/online_retail.parquet",
        "format": "online-retail",
        "split": ("temporal", {"variant": "discovery"}),
        "models": ["popularity", "als", "ease", "sasrec-fused", "gru4rec-fused", "lightgcn-fused"],
    },
}


def run_one(run: str, label: str, shared: Path, cache: Path) -> dict:
    """Fit and score one model on one run's test split; returns the JSON record (child process)."""
    from shoprec.data.adapters import load_dataset
    from shoprec.eval import evaluate, leave_last_out, temporal_split
    from shoprec.models import create_model

    spec = RUNS[run]
    dataset = load_dataset(shared / spec["path"], fmt=spec["format"])
    protocol, options = spec["split"]
    if protocol == "leave-last-out":
        split = leave_last_out(dataset, stage="test")
    else:
        split = temporal_split(dataset, test_days=30, stage="test", **options)
    name, settings = MODELS[label]
    settings = dict(settings)
    if settings.get("item_repr", "id") != "id":
        settings["cache_dir"] = str(cache)
    model = create_model(name, **settings)
    model.progress = True
    result = evaluate({label: model}, split, ks=KS)
    record = {
        "run": run,
        "label": label,
        "model": name,
        "settings": {**model.config.__dict__},
        "result": result.to_dict(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "dataset": dataset.describe(),
    }
    for attr in ("log", "fit_stats"):
        value = getattr(model, attr, None)
        if value is not None:
            record[attr] = value.__dict__ if hasattr(value, "__dict__") else value
    return record


def table(records: list[dict]) -> str:
    lines = [
        "| model | NDCG@10 | HR@10 | Recall@20 | MRR@10 | coverage@10 | fit s | score all s | peak MB | epochs (best) "
        "|",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        m = r["result"]["models"][r["label"]]
        x = m["metrics"]
        log = r.get("log") or {}
        epochs = f"{log['epochs']} ({log['best_epoch']})" if log.get("epochs") else ""
        lines.append(
            f"| {r['label']} | {x['ndcg@10']:.4f} | {x['hr@10']:.4f} | {x['recall@20']:.4f} | {x['mrr@10']:.4f} | "
            f"{x['coverage@10']:.3f} | {m['fit_seconds']:.0f} | {m['recommend_seconds']:.1f} | "
            f"{r['peak_rss_mb']:,.0f} | {epochs} |"
        )
    return "\n".join(lines)


def tables(folder: Path) -> str:
    """One markdown table per run from the JSON records in ``folder``, models in RUNS order."""
    parts = []
    for run, spec in RUNS.items():
        records = [
            json.loads((folder / f"{run}--{label}.json").read_text())
            for label in spec["models"]
            if (folder / f"{run}--{label}.json").exists()
        ]
        if records:
            parts.append(f"### {spec['title']}\n\n{table(records)}\n")
    return "\n".join(parts)


def write_doc(text: str) -> None:
    write_block("sequential", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder of the public datasets")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="item-vector cache folder")
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated: " + ", ".join(RUNS))
    parser.add_argument("--models", default=None, help="only these model labels: " + ", ".join(MODELS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sequential")
    parser.add_argument("--one", nargs=2, metavar=("RUN", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--tables", action="store_true", help="only print the tables of the results so far")
    parser.add_argument("--doc", action="store_true", help="with --tables: also write them into docs/benchmarks.md")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tables:
        text = tables(args.out)
        print(text)
        if args.doc:
            write_doc(text)
        return
    if args.one:
        run, label = args.one
        record = run_one(run, label, args.shared, args.cache)
        (args.out / f"{run}--{label}.json").write_text(json.dumps(record, indent=2, default=float))
        return
    only = set(args.models.split(",")) if args.models else None
    started = time.perf_counter()
    for run in args.runs.split(","):
        records = []
        for label in RUNS[run]["models"]:
            if only and label not in only:
                continue
            print(f"== {run}: {label}", flush=True)
            command = [sys.executable, __file__, "--one", run, label, "--out", str(args.out)]
            command += ["--shared", str(args.shared), "--cache", str(args.cache)]
            done = subprocess.run(command, check=False)
            if done.returncode != 0:
                print(f"   {label} failed with exit code {done.returncode}; continuing", flush=True)
                continue
            records.append(json.loads((args.out / f"{run}--{label}.json").read_text()))
        print(f"\n{RUNS[run]['title']}\n{table(records)}\n", flush=True)
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "total_seconds": time.perf_counter() - started,
        "command": " ".join(["python benchmarks/sequential.py", *sys.argv[1:]]),
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2))
    print(f"done in {meta['total_seconds']:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
