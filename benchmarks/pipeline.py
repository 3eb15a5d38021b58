"""The recommendation pipeline against each of its own sources, in one run per dataset.

    .venv/bin/python benchmarks/pipeline.py --runs retail,beauty
    .venv/bin/python benchmarks/pipeline.py --tables --doc      # rewrite the docs/benchmarks.md block

Protocol (nothing looks at the test target before the final score):
1. Validation stage of the split (leave-last-out: each user's second-last item; temporal: the 30
   days before the test window). Every source is fitted on the data before it; the learned ranker
   is trained, and the fusion weights tuned, on the validation users' candidates.
2. Test stage: every source is refitted on the test stage's training data; the ranker and weights
   from step 1 are applied unchanged. Reported side by side on the same users: the pipeline with
   the learned ranker, with weighted fusion, with equal-weight fusion, and each source's own top-k.
3. Latency: after step 2, ``--latency-users`` single-user requests, one at a time, with the
   per-stage timings the pipeline records (p50/p99 in milliseconds).

Full-catalogue ranking; each run in its own process (peak memory is that run's).
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

import numpy as np

from docblock import write_block  # noqa: E402 (benchmarks/ is the script folder)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
DEFAULT_CACHE = Path(os.environ.get("SHOPREC_VECTOR_CACHE", REPO.parent / "cache" / "vectors"))
KS = (5, 10, 20)
OUT = REPO / "benchmarks" / "results" / "pipeline"

SOURCES = {
    "sasrec": ("model", {"model": "sasrec", "settings": {"item_repr": "fused"}}),
    "ease": ("model", {"model": "ease", "settings": {}}),
    "als": ("model", {"model": "als", "settings": {}}),
    "i2i": ("item-to-item", {"similarity": "cooccurrence"}),
    "i2i-text": ("item-to-item", {"similarity": "text", "neighbors": 50}),
    "trending": ("popularity", {"window_days": 7}),
    "popularity": ("popularity", {}),
    "buy-again": ("buy-again", {}),
}

RUNS: dict[str, dict] = {
    "retail": {
        "path": "online-retail-2010-2011/online_retail.parquet",
        "format": "online-retail",
        "protocol": "temporal",
        "variants": {
            "retail-repeat": ("UCI Online Retail, last 30 days = test, repeat purchases count", {"variant": "repeat"}),
            "retail-discovery": ("UCI Online Retail, last 30 days = test, new items only", {"variant": "discovery"}),
        },
        # no SASRec here: two fits of 11+ min each on 2 cores, and the weakest source on this data in
        # the sequential benchmark (discovery NDCG@10 0.058 against EASE 0.097)
        "sources": ["ease", "als", "i2i", "i2i-text", "buy-again", "trending"],
    },
    "beauty": {
        "path": "amazon-beauty",
        "format": "folder",
        "protocol": "leave-last-out",
        "variants": {"beauty": ("Amazon Beauty with titles, leave-last-out", {})},
        "sources": ["sasrec", "ease", "i2i", "i2i-text", "popularity"],
    },
}
"""Each run fits its sources once per stage; the variants of a run share the training data (the
temporal repeat and discovery variants have the same cutoff) and differ in truth and exclusions."""


def make_split(dataset, protocol: str, options: dict, stage: str):
    from shoprec.eval import leave_last_out, temporal_split

    if protocol == "leave-last-out":
        return leave_last_out(dataset, stage=stage)
    return temporal_split(dataset, test_days=30, stage=stage, **options)


def build_pipeline(spec: dict, exclude_seen: bool, recall_k: int):
    from shoprec.pipeline.config import build_source
    from shoprec.pipeline.pipeline import Pipeline

    sources = []
    for name in spec["sources"]:
        kind, options = SOURCES[name]
        sources.append(build_source({"name": name, "type": kind, **options}, exclude_seen=exclude_seen))
    return Pipeline(sources, recall_k=recall_k, exclude_seen=exclude_seen)


def ranked(pipe, contexts, k: int, mode: str, batch: int = 1024) -> tuple[np.ndarray, float]:
    recs = np.full((len(contexts), k), -1, dtype=np.int64)
    began = time.perf_counter()
    for start in range(0, len(contexts), batch):
        for row, rec in enumerate(pipe.recommend(contexts[start : start + batch], k, mode, with_shares=False)):
            recs[start + row, : len(rec.items)] = rec.items[:k]
    return recs, time.perf_counter() - began


def source_lists(pipe, contexts, k: int, batch: int = 1024) -> dict[str, np.ndarray]:
    out = {s.name: np.full((len(contexts), k), -1, dtype=np.int64) for s in pipe.sources}
    for start in range(0, len(contexts), batch):
        block = contexts[start : start + batch]
        for s in pipe.sources:
            for row, (items, _) in enumerate(s.recall(block, k)):
                out[s.name][start + row, : len(items)] = items[:k]
    return out


def latency(pipe, contexts, n: int, k: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(contexts), size=min(n, len(contexts)), replace=False)
    per_stage: dict[str, list[float]] = {}
    for i in picks:
        began = time.perf_counter()
        [rec] = pipe.recommend([contexts[i]], k, with_shares=False)
        total = 1000 * (time.perf_counter() - began)
        began = time.perf_counter()
        [explained] = pipe.recommend([contexts[i]], k, with_shares=True)
        with_shares = 1000 * (time.perf_counter() - began)
        stages = {**rec.timings, "total": total, "shares (explanations only)": explained.timings["shares"]}
        stages["total with shares"] = with_shares
        for stage, ms in stages.items():
            per_stage.setdefault(stage, []).append(ms)
    return {s: {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))} for s, v in per_stage.items()}


def run_one(run: str, shared: Path, cache: Path, recall_k: int, latency_users: int) -> dict[str, dict]:
    """Every variant of one run; returns ``{variant label: record}``."""
    import copy

    from shoprec.data.adapters import load_dataset
    from shoprec.eval import score_recommendations
    from shoprec.models.textside import TextVectors
    from shoprec.pipeline.context import contexts_from_dataset

    spec = RUNS[run]
    t0 = time.perf_counter()
    dataset = load_dataset(shared / spec["path"], fmt=spec["format"])
    texts = TextVectors("auto", str(cache))
    vectors = texts.vectors(dataset)  # for the diversity metric only; the pipeline gets its training data's
    variants = spec["variants"]
    valid = {v: make_split(dataset, spec["protocol"], opts, "valid") for v, (_, opts) in variants.items()}
    first = next(iter(valid.values()))
    pipe = build_pipeline(spec, first.exclude_seen, recall_k)
    pipe.fit(first.train, texts.vectors(first.train), progress=True)
    fit_valid = dict(pipe.fit_seconds)
    trained = {}
    for v, split in valid.items():
        pipe.set_exclude_seen(split.exclude_seen)
        began = time.perf_counter()
        stats = pipe.fit_ranker(contexts_from_dataset(split.train, split.users), split.truth)
        stats["seconds"] = time.perf_counter() - began
        stats["importance"] = pipe.ranker.importance()
        print(f"{v} ranker: {json.dumps(stats, default=float)[:400]}", flush=True)
        trained[v] = (copy.deepcopy(pipe.ranker), copy.deepcopy(pipe.fusion), stats)
    test = {v: make_split(dataset, spec["protocol"], opts, "test") for v, (_, opts) in variants.items()}
    test_train = next(iter(test.values())).train
    pipe.fit(test_train, texts.vectors(test_train), progress=True)
    records = {}
    for v, split in test.items():
        pipe.ranker, pipe.fusion, stats = trained[v]
        pipe.set_exclude_seen(split.exclude_seen)
        contexts = contexts_from_dataset(split.train, split.users)
        k = max(KS)
        rows, seconds = {}, {}
        for mode, label in (
            ("learned", "pipeline (learned ranker)"),
            ("fusion", "pipeline (tuned fusion)"),
            ("none", "pipeline (equal fusion)"),
        ):
            rows[label], seconds[label] = ranked(pipe, contexts, k, mode)
            print(f"{v} {label}: {seconds[label]:.1f} s", flush=True)
        for name, recs in source_lists(pipe, contexts, k).items():
            rows[f"source: {name}"] = recs
        records[v] = {
            "run": v,
            "title": variants[v][0],
            "users": len(split.users),
            "items": dataset.n_items,
            "split_info": {"valid": valid[v].info, "test": split.info},
            "sources": spec["sources"],
            "recall_k": recall_k,
            "metrics": {label: score_recommendations(r, split, KS, vectors)[0] for label, r in rows.items()},
            "rank_seconds": seconds,
            "fit_seconds": {"valid": fit_valid, "test": dict(pipe.fit_seconds)},
            "ranker": stats,
            "latency_ms": latency(pipe, contexts, latency_users, 10),
        }
    for record in records.values():
        record["total_seconds_run"] = time.perf_counter() - t0
        record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return records


def table(record: dict) -> str:
    lines = [
        "| recommender | NDCG@10 | Recall@20 | HR@10 | coverage@20 | diversity@10 | novelty@10 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    best_source = max((v["ndcg@10"], k) for k, v in record["metrics"].items() if k.startswith("source:"))
    for label, x in record["metrics"].items():
        mark = " (best source)" if label == best_source[1] else ""
        lines.append(
            f"| {label}{mark} | {x['ndcg@10']:.4f} | {x['recall@20']:.4f} | {x['hr@10']:.4f} | "
            f"{x['coverage@20']:.3f} | {x.get('diversity@10', float('nan')):.3f} | {x['novelty@10']:.2f} |"
        )
    return "\n".join(lines)


def latency_table(record: dict) -> str:
    lines = ["| stage | p50 ms | p99 ms |", "|---|---:|---:|"]
    for stage, v in record["latency_ms"].items():
        if stage == "shares":  # zero on the serving path; the explanation cost is its own row
            continue
        lines.append(f"| {stage} | {v['p50']:.2f} | {v['p99']:.2f} |")
    return "\n".join(lines)


def tables(folder: Path) -> str:
    parts = []
    labels = [v for spec in RUNS.values() for v in spec["variants"]]
    for run in labels:
        path = folder / f"{run}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        ranker = r["ranker"]
        parts.append(
            f"### {r['title']}\n\n{r['users']:,} test users, {r['items']:,} items, sources: "
            f"{', '.join(r['sources'])}, {r['recall_k']} candidates per source. Ranker trained on "
            f"{ranker['ranker']['users']:,} validation users ({ranker['users_without_recalled_positive']:,} "
            f"more had no recalled positive), {ranker['ranker']['best_iteration']} rounds; fusion weights "
            f"{ranker['fusion_weights']}. Whole run (all variants) {r['total_seconds_run'] / 60:.0f} min, peak "
            f"{r['peak_rss_mb']:,.0f} MB.\n\n{table(r)}\n"
        )
        parts.append(f"Per-stage latency, one user per request, {r['items']:,} items:\n\n{latency_table(r)}\n")
    return "\n".join(parts)


def write_doc(text: str) -> None:
    write_block("pipeline", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated: " + ", ".join(RUNS))
    parser.add_argument("--recall-k", type=int, default=50, help="candidates per source")
    parser.add_argument("--latency-users", type=int, default=300)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--tables", action="store_true")
    parser.add_argument("--doc", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tables:
        text = tables(args.out)
        print(text)
        if args.doc:
            write_doc(text)
        return
    if args.one:
        records = run_one(args.one, args.shared, args.cache, args.recall_k, args.latency_users)
        for label, record in records.items():
            record["date"] = dt.datetime.now().isoformat(timespec="seconds")
            record["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
            record["command"] = f"python benchmarks/pipeline.py --runs {args.one} --recall-k {args.recall_k}"
            (args.out / f"{label}.json").write_text(json.dumps(record, indent=2, default=float))
            print(f"\n{record['title']}\n{table(record)}\n\n{latency_table(record)}", flush=True)
        return
    for run in args.runs.split(","):
        print(f"== {run}", flush=True)
        command = [sys.executable, __file__, "--one", run, "--out", str(args.out), "--shared", str(args.shared)]
        command += ["--cache", str(args.cache), "--recall-k", str(args.recall_k)]
        command += ["--latency-users", str(args.latency_users)]
        if subprocess.run(command, check=False).returncode != 0:
            print(f"   {run} failed; continuing", flush=True)


if __name__ == "__main__":
    main()
