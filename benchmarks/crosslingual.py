"""Cross-lingual retrieval on the bilingual demo shop: does a Chinese listing find its English twin?

    .venv/bin/python benchmarks/crosslingual.py                     # default shop, all three encoders
    .venv/bin/python benchmarks/crosslingual.py --preset small --encoders use-multilingual

The demo shop lists 10% of its products twice, in English and in Chinese (``truth["twins"]``, see
:mod:`shoprec.data.demo.twins`). For every pair the Chinese item's text is encoded and all English
items are ranked by cosine similarity; the metric is where its English twin lands (``zh->en``).
The reverse direction (``en->zh``) ranks all Chinese items for the English twin. Texts:

- ``title``; ``title+description``;
- ``title-no-brand``: the title without its brand name. Brands (and numbers such as ``350 ml`` /
  ``350毫升``) are written alike in both languages, so even an English-only model can match some
  twins by them; this variant shows how much of a score is translation and how much is shared tokens.

Encoders: ``use-multilingual`` (trained on 16 languages incl. Chinese) and the English-only
``minilm`` / ``minilm-int8`` as controls. Reported per encoder, text and direction: Recall@1,
Recall@10, MRR, median rank (1 = found first; ties count against the twin) and ``leaf@1``, the share
of queries whose top hit is at least a product of the same leaf category. Results go to
``benchmarks/results/crosslingual.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.data.demo import PRESETS, generate_preset
from shoprec.text.encoders import ENCODERS, load_encoder

REPO = Path(__file__).resolve().parents[1]
TEXTS = ("title", "title+description", "title-no-brand")
DIRECTIONS = ("zh->en", "en->zh")
KS = (1, 10)


def item_text(items: pd.DataFrame, kind: str) -> list[str]:
    """The text of every item for one of :data:`TEXTS`."""
    if kind == "title":
        return items["title"].tolist()
    if kind == "title+description":
        return (items["title"] + ". " + items["description"]).tolist()
    return [" ".join(t.replace(b, " ").split()) for t, b in zip(items["title"], items["brand"], strict=True)]


def twin_ranks(sims: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of target ``truth[i]`` in row ``i`` of the (n_queries, n_targets) similarities
    (a target tied with the twin counts as ranked above it)."""
    own = sims[np.arange(len(sims)), truth][:, None]  # (n_queries, 1)
    return (sims >= own).sum(axis=1)


def summarise(ranks: np.ndarray, top_leaf_match: np.ndarray) -> dict[str, float]:
    """Recall@K, MRR, median rank and leaf@1 of one run."""
    out = {f"recall@{k}": float((ranks <= k).mean()) for k in KS}
    out["mrr"] = float((1.0 / ranks).mean())
    out["median_rank"] = float(np.median(ranks))
    out["leaf@1"] = float(top_leaf_match.mean())
    return out


def evaluate_encoder(name: str, items: pd.DataFrame, pairs: np.ndarray) -> dict[str, dict]:
    """All texts and directions for one encoder; ``pairs`` holds (english row, chinese row)."""
    started = time.perf_counter()
    encoder = load_encoder(name)
    load_seconds = time.perf_counter() - started
    is_zh = (items["language"] == "zh").to_numpy()
    leaf = items["category"].to_numpy()
    pools = {"en": np.flatnonzero(~is_zh), "zh": np.flatnonzero(is_zh)}
    results: dict[str, dict] = {"load_seconds": load_seconds}
    for kind in TEXTS:
        started = time.perf_counter()
        vectors = encoder.encode(item_text(items, kind), progress=True)
        encode_seconds = time.perf_counter() - started
        for direction in DIRECTIONS:
            source, target = direction.split("->")
            query_rows = pairs[:, 0] if source == "en" else pairs[:, 1]
            answer_rows = pairs[:, 0] if target == "en" else pairs[:, 1]
            pool = pools[target]
            truth = np.searchsorted(pool, answer_rows)  # position of each twin in the pool (pool is sorted)
            sims = vectors[query_rows] @ vectors[pool].T  # (n_pairs, pool size), cosine of unit vectors
            ranks = twin_ranks(sims, truth)
            top = pool[np.argmax(sims, axis=1)]
            results[f"{kind}|{direction}"] = summarise(ranks, leaf[top] == leaf[query_rows])
        results[f"{kind}|encode_seconds"] = encode_seconds
    return results


def table(record: dict) -> str:
    """Markdown table: one row per encoder, text and direction."""
    lines = [
        "| encoder | text | direction | Recall@1 | Recall@10 | MRR | median rank | leaf@1 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, results in record["encoders"].items():
        for kind in TEXTS:
            for direction in DIRECTIONS:
                m = results[f"{kind}|{direction}"]
                lines.append(
                    f"| {name} | {kind} | {direction} | {m['recall@1']:.3f} | {m['recall@10']:.3f} | "
                    f"{m['mrr']:.3f} | {m['median_rank']:.0f} | {m['leaf@1']:.3f} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=list(PRESETS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--encoders", default="use-multilingual,minilm,minilm-int8", help=", ".join(ENCODERS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "crosslingual.json")
    args = parser.parse_args()
    shop = generate_preset(args.preset, seed=args.seed)
    items = shop.items.reset_index(drop=True)
    row = pd.Series(np.arange(len(items)), index=items["item_id"])
    pairs = np.stack([row[[e for e, _ in shop.truth["twins"]]], row[[z for _, z in shop.truth["twins"]]]], axis=1)
    n_zh = int((items["language"] == "zh").sum())
    print(
        f"demo shop '{args.preset}' (seed {args.seed}): {len(pairs)} twin pairs; {len(items) - n_zh} English, "
        f"{n_zh} Chinese items"
    )
    started = time.perf_counter()
    record = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join(["python benchmarks/crosslingual.py", *sys.argv[1:]]),
        "shop": {
            "preset": args.preset,
            "seed": args.seed,
            "items": len(items),
            "chinese_items": n_zh,
            "twin_pairs": len(pairs),
        },
        "encoders": {name: evaluate_encoder(name, items, pairs) for name in args.encoders.split(",")},
    }
    record["total_seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    print(table(record))
    print(f"done in {record['total_seconds']:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
