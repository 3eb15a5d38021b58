"""Encoding throughput (items/s) of the built-in text encoders, cold and with a warm vector cache.

    .venv/bin/python benchmarks/text_encoders.py                      # full run (minutes on 2 cores)
    .venv/bin/python benchmarks/text_encoders.py --limit 200 --preset small --tags   # quick check

For each encoder (minilm, minilm-int8, use-multilingual) and each dataset (the generated demo
shop's item texts; Amazon Beauty titles from the shared datasets, skipped when absent) it times
``item_vectors`` twice with one fresh cache folder: ``cold`` (every text encoded and written to
the cache) and ``warm`` (a second call: texts hashed, vectors read back). Torch, onnxruntime and
USE all run with 2 threads. With ``--tags`` it also times ``extract_tags`` (minilm-int8, demo
shop). Results go to ``benchmarks/results/text_encoders.json`` and a markdown table is printed.
Timings on a shared machine are noisy: the JSON records the load average before and after, and
CPU seconds, since items per CPU-second moves less than items per second when others are busy.
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

import pandas as pd

from shoprec.data.dataset import Dataset
from shoprec.data.demo import PRESETS, generate_preset
from shoprec.data.frames import dataset_from_frames
from shoprec.text.encoders import Encoder, MultilingualUSEEncoder, OnnxMiniLMEncoder, SentenceTransformerEncoder
from shoprec.text.itemtext import item_texts
from shoprec.text.tags import extract_tags
from shoprec.text.vectors import VectorCache, item_vectors

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
THREADS = 2
ENCODERS = ("minilm", "minilm-int8", "use-multilingual")


def make_encoder(name: str) -> Encoder:
    """A built-in encoder limited to :data:`THREADS` threads."""
    if name == "minilm":
        return SentenceTransformerEncoder(name="minilm", threads=THREADS)
    if name == "minilm-int8":
        return OnnxMiniLMEncoder(threads=THREADS)
    return MultilingualUSEEncoder(threads=THREADS)


def head(items: pd.DataFrame, interactions: pd.DataFrame, limit: int | None, name: str) -> Dataset:
    """A dataset of the first ``limit`` items (all when None) and their interactions."""
    if limit:
        items = items.head(limit)
        interactions = interactions[interactions["item_id"].isin(items["item_id"])]
    return dataset_from_frames(items, interactions, name=name)


def demo_dataset(preset: str, limit: int | None) -> Dataset:
    shop = generate_preset(preset)
    return head(shop.items, shop.interactions, limit, f"demo-{preset}")


def beauty_dataset(shared: Path, limit: int | None) -> Dataset | None:
    folder = shared / "amazon-beauty"
    if not (folder / "items.parquet").exists():
        print(f"skipping Amazon Beauty: {folder}/items.parquet not found (set SHOPREC_SHARED_DATA)")
        return None
    items = pd.read_parquet(folder / "items.parquet")
    interactions = pd.read_parquet(folder / "interactions.parquet")
    return head(items, interactions, limit, "amazon-beauty-titles")


def measure(dataset: Dataset, encoder: Encoder, batch_size: int) -> dict:
    """Cold and warm ``item_vectors`` timings for one dataset and encoder, in a fresh cache folder."""
    n = dataset.n_items
    with tempfile.TemporaryDirectory(prefix="shoprec-bench-") as folder:
        cache = VectorCache(folder, encoder.name)
        start, cpu = time.perf_counter(), time.process_time()
        item_vectors(dataset, encoder, cache_dir=cache, progress=False, batch_size=batch_size)
        cold, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
        misses = cache.last_stats["misses"]
        start = time.perf_counter()
        item_vectors(dataset, encoder, cache_dir=cache, progress=False, batch_size=batch_size)
        warm = time.perf_counter() - start
        hits = cache.last_stats["hits"]
    texts = item_texts(dataset).texts
    return {
        "items": n,
        "mean_chars": sum(map(len, texts)) / max(n, 1),
        "cold_s": cold,
        "cold_items_per_s": n / cold,
        "cold_cpu_s": cold_cpu,
        "cold_encoded": misses,
        "warm_s": warm,
        "warm_items_per_s": n / warm,
        "warm_hits": hits,
    }


def time_tags(dataset: Dataset, batch_size: int) -> dict:
    encoder = make_encoder("minilm-int8")
    vectors = item_vectors(dataset, encoder, progress=False, batch_size=batch_size)
    start = time.perf_counter()
    extract_tags(dataset, encoder, vectors, top_n=5, progress=False)
    seconds = time.perf_counter() - start
    return {"dataset": dataset.name, "encoder": encoder.name, "items": dataset.n_items, "tags_s": seconds}


def table(results: list[dict]) -> str:
    lines = [
        "| encoder | dataset | items | load s | cold items/s | cold items/CPU-s | warm items/s | warm speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        speedup = r["warm_items_per_s"] / r["cold_items_per_s"]
        lines.append(
            f"| {r['encoder']} | {r['dataset']} | {r['items']:,} | {r['load_s']:.1f} | {r['cold_items_per_s']:,.0f} | "
            f"{r['items'] / r['cold_cpu_s']:,.0f} | {r['warm_items_per_s']:,.0f} | {speedup:,.0f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder of the public datasets")
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated: " + ", ".join(ENCODERS))
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="demo shop size")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N items of each dataset")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tags", action="store_true", help="also time extract_tags on the demo shop")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "text_encoders.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(THREADS)
    load_before = os.getloadavg()
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load_before[0]:.1f} on {os.cpu_count()} cores: timings will be noisy")
    datasets = [demo_dataset(args.preset, args.limit), beauty_dataset(args.shared, args.limit)]
    datasets = [d for d in datasets if d is not None]
    results = []
    for name in args.encoders.split(","):
        start = time.perf_counter()
        encoder = make_encoder(name)
        encoder.encode(["warm up"])  # first call pays one-off graph and allocator set-up
        load = time.perf_counter() - start
        for dataset in datasets:
            print(f"{name} on {dataset.name} ({dataset.n_items:,} items) ...", flush=True)
            results.append(
                {"encoder": name, "dataset": dataset.name, "load_s": load, **measure(dataset, encoder, args.batch_size)}
            )
    tags = time_tags(datasets[0], args.batch_size) if args.tags else None
    record = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "threads": THREADS,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "command": " ".join(["python benchmarks/text_encoders.py", *sys.argv[1:]]),
        "results": results,
        "tags": tags,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(table(results))
    if tags:
        print(f"\nextract_tags ({tags['encoder']}, {tags['dataset']}, {tags['items']:,} items): {tags['tags_s']:.1f} s")
    print(
        f"\nload average {load_before[0]:.1f} before, {record['load_average_after'][0]:.1f} after; written {args.out}"
    )


if __name__ == "__main__":
    main()
