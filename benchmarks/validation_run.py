"""One model with given settings on a validation (or test) split; the tuning runs behind the defaults.

    .venv/bin/python benchmarks/validation_run.py sasrec '{"item_repr": "fused", "learning_rate": 0.001}'
    .venv/bin/python benchmarks/validation_run.py lightgcn '{"reg": 0.1}' --dataset amazon-beauty

Prints one JSON line (NDCG@10, HR@10, fit and training seconds, epochs, validation curve, peak
memory) and appends it to ``benchmarks/results/tuning/<model>.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import time
from pathlib import Path

from shoprec.data.adapters import load_dataset
from shoprec.eval import evaluate, leave_last_out
from shoprec.models import create_model, get_model_class

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
DEFAULT_CACHE = Path(os.environ.get("SHOPREC_VECTOR_CACHE", REPO.parent / "cache" / "vectors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("settings", nargs="?", default="{}", help="JSON object of model settings")
    parser.add_argument("--dataset", default="amazon-beauty", help="folder under the shared datasets")
    parser.add_argument("--stage", default="valid", choices=["valid", "test"])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    settings = json.loads(args.settings)
    split = leave_last_out(load_dataset(args.shared / args.dataset, fmt="folder"), stage=args.stage)
    fields = {f.name for f in dataclasses.fields(get_model_class(args.model).config_class)}
    extra = {"cache_dir": str(args.cache)} if "cache_dir" in fields and "cache_dir" not in settings else {}
    model = create_model(args.model, **settings, **extra)
    model.progress = True
    started = time.perf_counter()
    model.fit(split.train)
    fit_seconds = time.perf_counter() - started
    result = evaluate({args.model: model}, split, ks=(10,), fitted=True, progress=False).models[args.model]
    log = getattr(model, "log", None)
    record = {
        "model": args.model,
        "settings": settings,
        "dataset": args.dataset,
        "stage": args.stage,
        "ndcg@10": round(result.metrics["ndcg@10"], 4),
        "hr@10": round(result.metrics["hr@10"], 4),
        "fit_s": round(fit_seconds, 1),
        "epochs": getattr(log, "epochs", None),
        "best_epoch": getattr(log, "best_epoch", None),
        "valid_curve": [round(x, 4) for x in getattr(log, "valid_ndcg", [])],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "load_average": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    print(json.dumps(record))
    out = REPO / "benchmarks" / "results" / "tuning" / f"{args.model}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
