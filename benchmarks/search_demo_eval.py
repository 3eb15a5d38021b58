"""Search on the demo shop's logs: clicked-item Recall@10 and MRR@10 of later queries, per language,
for lexical, dense, hybrid and hybrid + personal search; and cross-lingual retrieval of bilingual twins.

    nice -n 10 .venv/bin/python benchmarks/search_demo_eval.py            # default demo shop, seed 7

Protocol (nothing from after a test query's time is used for it):

- The demo shop (``generate_demo_shop(seed, n_items, n_users, days)``; default 3,000 items, 2,000
  shoppers, 120 days, about 5,200 logged queries with a click, a fifth of them in Chinese) is
  generated; its ``queries`` table is split by time: the earliest ``--train-share`` of the clicked
  queries are the training period, the rest the test period.
- Item vectors come from the catalogue text only (title, description, category, brand; no review
  digest, since reviews are written over the whole period), encoded with ``use-multilingual``
  through the vector cache (``--cache``). Query vectors are encoded once and cached the same way.
- A query's shopper profile (:class:`shoprec.search.personal.SearchProfile`) is built from that
  shopper's events (views, clicks, carts, purchases) and past queries dated strictly before the
  query's own timestamp. The log's query time is the session start, before the session's first view
  (the clicked item), so the click itself is never in the profile.
- The training period (its latest ``--tune-queries`` queries) picks the recency half-life, which
  profile features count (each on or off) and the blend weights (best Recall@10, MRR breaking ties);
  nothing else is learned. The chosen values are then fixed for the test period.
- Metrics: the clicked item in the top 10 (Recall@10) and its reciprocal rank within the top 10
  (MRR@10), with 95% intervals: Wilson for Recall, a percentile bootstrap over queries (2,000
  resamples) for MRR and for paired differences between rows (same queries).
- Rows: lexical only; the dense source alone (the query's constraints kept); the engine's hybrid
  (RRF of both); the engine with the shopper's profile (``search(..., profile=...)``: its personal
  candidate source and blend, tuned weight); and, for comparison, the hybrid top 50 reordered by a
  plain blend ``(1 - w) * rrf / max(rrf) + w * profile score`` with features and ``w`` chosen on the
  training queries.
- Cross-lingual: (a) ``--twin-pairs`` sampled twin pairs, each pair's Chinese title as a query,
  searched among the English listings only (``allowed`` mask): is its English twin in the top 10;
  the reverse direction too; (b) test
  queries in Chinese whose clicked item has an English twin: is that twin in the top 10 among the
  English listings.

Writes ``benchmarks/results/search-demo/search_demo_eval.json`` and ``.md`` (with the command and commit).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.data.demo import generate_demo_shop
from shoprec.search.dense import DenseIndex
from shoprec.search.hybrid import SearchEngine
from shoprec.search.personal import FEATURES, FeatureWeights, SearchProfile
from shoprec.search.products import ProductTable, products_from_dataset
from shoprec.text.encoders import Encoder, load_encoder
from shoprec.text.itemtext import item_texts
from shoprec.text.vectors import VectorCache, item_vectors

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "search-demo"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
K = 10
WEIGHTS = (0.05, 0.1, 0.2, 0.3)
HALF_LIVES = (10.0, 50.0)


class QueryVectors(Encoder):
    """The real encoder, answering texts encoded ahead of time from a table (one query at a time is slow)."""

    def __init__(self, encoder: Encoder, known: dict[str, np.ndarray]) -> None:
        self.inner, self.known = encoder, known
        self.name, self.dim, self.multilingual = encoder.name, encoder.dim, encoder.multilingual

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.known]
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self.known[text] = vector
        return np.stack([self.known[t] for t in texts])


@dataclass
class Shop:
    data: object  # shoprec Dataset
    truth: dict
    table: ProductTable
    vectors: np.ndarray
    lexical: SearchEngine  # lexical only
    hybrid: SearchEngine  # lexical + dense
    history: dict[str, tuple[np.ndarray, np.ndarray]]  # user id -> (item positions, timestamps), time order
    past_queries: dict[str, tuple[list[str], np.ndarray]]  # user id -> (query texts, timestamps)


def build(args: argparse.Namespace) -> tuple[Shop, pd.DataFrame, dict]:
    timings = {}
    start = time.perf_counter()
    demo = generate_demo_shop(seed=args.seed, n_items=args.items, n_users=args.users, days=args.days)
    data = demo.to_dataset()
    table = ProductTable(products_from_dataset(data))
    timings["generate_s"] = time.perf_counter() - start
    encoder = load_encoder("use-multilingual")
    # one cache folder per shop: a vector cache keeps only about twice its latest call, so shops sharing
    # one folder would evict each other's vectors
    cache_dir = Path(args.cache) / f"seed{args.seed}-{args.items}x{args.users}x{args.days}"
    start = time.perf_counter()
    texts = item_texts(data, review_chars=0)
    vectors = item_vectors(data, encoder, cache_dir=cache_dir / "items", texts=texts)
    log = data.queries.copy()
    log["query"] = log["query"].astype(str)
    lexical = SearchEngine(table)
    semantic = sorted({lexical.parser.parse(q).semantic_text for q in log["query"]} - {""})
    cache = VectorCache(cache_dir / "queries", encoder.name)
    known = dict(zip(semantic, cache.encode(semantic, encoder), strict=True))
    timings["encode_s"] = time.perf_counter() - start
    start = time.perf_counter()
    dense = DenseIndex(QueryVectors(encoder, known), vectors, table.alive)
    hybrid = SearchEngine(table, lexical=lexical.lexical, dense=dense, speller=lexical.speller)
    timings["engines_s"] = time.perf_counter() - start
    events = data.interactions.sort_values(["user", "timestamp"], kind="stable")
    events = events.assign(user_id=data.user_vocab.ids(events["user"].to_numpy()))
    history = {
        str(u): (g["item"].to_numpy(np.int64), g["timestamp"].to_numpy(np.int64)) for u, g in events.groupby("user_id")
    }
    log = log.sort_values("timestamp", kind="stable").reset_index(drop=True)
    past = {str(u): (g["query"].tolist(), g["timestamp"].to_numpy(np.int64)) for u, g in log.groupby("user_id")}
    return Shop(data, demo.truth, table, vectors, lexical, hybrid, history, past), log, timings


def profile_at(
    shop: Shop, user_id: str, when: int, weight: float, half_life: float, weights: FeatureWeights | None = None
) -> SearchProfile:
    """The shopper's profile from their events and queries strictly before ``when``."""
    items, times = shop.history.get(user_id, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    texts, qtimes = shop.past_queries.get(user_id, ([], np.zeros(0, np.int64)))
    before = np.searchsorted(times, when, side="left")
    qbefore = int(np.searchsorted(qtimes, when, side="left"))
    return SearchProfile.from_history(
        shop.table, items[:before], shop.vectors, texts[:qbefore], weight=weight, half_life=half_life, weights=weights
    )


def rank_of(positions: list[int], target: int) -> int:
    """1-based rank of ``target`` in ``positions``, 0 when absent."""
    return positions.index(target) + 1 if target in positions else 0


def dense_only(shop: Shop, query: str, allowed: np.ndarray | None = None) -> list[int]:
    """The dense source alone: the query's constraints applied (dropped when they leave nothing), cosine top 10."""
    engine = shop.hybrid
    parsed = engine.parser.parse(query)
    outer = shop.table.alive if allowed is None else allowed & shop.table.alive
    if not parsed.semantic_text.strip():
        return []
    vector = engine.dense.encode_query(parsed.semantic_text)
    mask = engine.allowed(parsed) & outer
    if not mask.any():
        mask = outer
    return engine.dense.search(vector, K, mask)[0].tolist()


@dataclass(frozen=True)
class Personal:
    """What the personal rows use: the engine's blend weight, the half-life, the feature weights, and the
    blend weight of the top-50 rerank."""

    weight: float
    half_life: float
    weights: FeatureWeights
    rerank_weight: float = 0.0
    rerank_features: FeatureWeights | None = None


def ranks(shop: Shop, log: pd.DataFrame, methods: tuple[str, ...], personal: Personal | None = None) -> dict:
    """1-based rank of each row's clicked item in the top 10 of each method (0: not there).

    ``hybrid`` takes the engine's top 50 (no profile); its first 10 are the hybrid row and, with
    ``rerank``, the 50 are reordered by ``(1 - w) * rrf / max(rrf) + w * profile score``.
    """
    out = {m: np.zeros(len(log), dtype=np.int64) for m in methods}
    for i, row in enumerate(log.itertuples(index=False)):
        target = int(row.item)
        if "lexical" in out:
            out["lexical"][i] = rank_of([h.position for h in shop.lexical.search(row.query, k=K).hits], target)
        if "dense" in out:
            out["dense"][i] = rank_of(dense_only(shop, row.query), target)
        if "hybrid" in out or "rerank" in out:
            hits = shop.hybrid.search(row.query, k=50).hits
            positions = np.array([h.position for h in hits], dtype=np.int64)
            if "hybrid" in out:
                out["hybrid"][i] = rank_of(positions[:K].tolist(), target)
            if "rerank" in out and len(positions):
                profile = profile_at(
                    shop, str(row.user_id), int(row.timestamp), 1.0, personal.half_life, personal.rerank_features
                )
                base = np.array([h.score for h in hits])
                w = personal.rerank_weight if not profile.empty else 0.0
                score = (1 - w) * base / base.max() + w * profile.score(
                    profile.features(shop.table, positions, shop.vectors)
                )
                order = np.lexsort((np.arange(len(score)), -score))
                out["rerank"][i] = rank_of(positions[order][:K].tolist(), target)
        if "personal" in out:
            profile = profile_at(
                shop, str(row.user_id), int(row.timestamp), personal.weight, personal.half_life, personal.weights
            )
            hits = shop.hybrid.search(row.query, k=K, profile=profile).hits
            out["personal"][i] = rank_of([h.position for h in hits], target)
    return out


def wilson(hits: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [float("nan"), float("nan")]
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 4), round(centre + half, 4)]


def bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 2000) -> list[float]:
    if len(values) == 0:
        return [float("nan"), float("nan")]
    idx = rng.integers(0, len(values), size=(n, len(values)))
    means = values[idx].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def summary(r: np.ndarray, rng: np.random.Generator) -> dict:
    hit = r > 0
    rr = np.where(hit, 1.0 / np.maximum(r, 1), 0.0)
    return {
        "n": int(len(r)),
        "recall@10": round(float(hit.mean()), 4) if len(r) else float("nan"),
        "recall_ci": wilson(int(hit.sum()), len(r)),
        "mrr@10": round(float(rr.mean()), 4) if len(r) else float("nan"),
        "mrr_ci": bootstrap(rr, rng),
    }


def paired(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> dict:
    """Differences b - a over the same queries (Recall@10 and MRR@10), with bootstrap intervals."""
    da = (b > 0).astype(float) - (a > 0).astype(float)
    rr = lambda r: np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0)  # noqa: E731
    dm = rr(b) - rr(a)
    return {
        "recall@10": round(float(da.mean()), 4),
        "recall_ci": bootstrap(da, rng),
        "mrr@10": round(float(dm.mean()), 4),
        "mrr_ci": bootstrap(dm, rng),
    }


def learn_feature_weights(shop: Shop, train: pd.DataFrame, n: int, half_life: float) -> tuple[FeatureWeights, dict]:
    """Feature weights (each 0 or 1) and a blend weight that best reorder the non-personal top 50 of the
    latest ``n`` training queries by ``(1 - w) * rrf / max(rrf) + w * profile score`` (Recall@10, then MRR@10).

    A fast stand-in for the engine's own blending (which also adds a personal candidate source), used
    only to choose which features to use; the blend weight is then chosen through the engine itself.
    """
    cases = []
    for row in train.tail(n).itertuples(index=False):
        hits = shop.hybrid.search(row.query, k=50).hits
        positions = np.array([h.position for h in hits], dtype=np.int64)
        if not len(positions):
            continue
        profile = profile_at(shop, str(row.user_id), int(row.timestamp), 0.3, half_life)
        features = profile.features(shop.table, positions, shop.vectors)
        base = np.array([h.score for h in hits])
        target = np.flatnonzero(positions == int(row.item))
        cases.append((base / base.max(), features, int(target[0]) if len(target) else -1))
    names = [f.removeprefix("personal_") for f in FEATURES]
    grid = []
    for mask in itertools.product((0.0, 1.0), repeat=len(names)):
        if not any(mask):
            continue
        for w in (0.05, 0.1, 0.2, 0.3):
            recall = mrr = 0.0
            for base, features, target in cases:
                if target < 0:
                    continue
                p = sum(m * features[f] for m, f in zip(mask, FEATURES, strict=True)) / sum(mask)
                score = (1 - w) * base + w * p
                rank = 1 + int(np.sum(score > score[target]) + np.sum(score[:target] == score[target]))
                recall += rank <= K
                mrr += 1.0 / rank if rank <= K else 0.0
            grid.append((recall / len(cases), mrr / len(cases), w, mask))
    recall, mrr, w, mask = max(grid, key=lambda g: (g[0], g[1]))
    base_recall = np.mean([0 <= t < K for _, _, t in cases])
    chosen = FeatureWeights(**dict(zip(names, mask, strict=True)))
    return chosen, {
        "queries": len(cases),
        "features": [f for f, m in zip(FEATURES, mask, strict=True) if m],
        "offline_blend_weight": w,
        "offline_recall@10": round(recall, 4),
        "offline_mrr@10": round(mrr, 4),
        "non_personal_recall@10": round(float(base_recall), 4),
    }


def tune(shop: Shop, train: pd.DataFrame, n: int) -> tuple[Personal, dict]:
    """Half-life and feature weights chosen offline, then the blend weight through the engine, on the
    latest ``n`` training queries (Recall@10, then MRR@10)."""
    learned, offline = {}, {}
    for half_life in HALF_LIVES:
        learned[half_life], offline[half_life] = learn_feature_weights(shop, train, n, half_life)
        print(f"  half-life {half_life:g}: {offline[half_life]}", file=sys.stderr)
    half_life = max(HALF_LIVES, key=lambda h: (offline[h]["offline_recall@10"], offline[h]["offline_mrr@10"]))
    sample = train.tail(n)
    grid = []
    for which, weights in (("default", FeatureWeights()), ("learned", learned[half_life])):
        for weight in WEIGHTS:
            r = ranks(shop, sample, ("personal",), Personal(weight, half_life, weights))["personal"]
            rr = np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0)
            grid.append(
                {
                    "weight": weight,
                    "features": which,
                    "recall@10": round(float((r > 0).mean()), 4),
                    "mrr@10": round(float(rr.mean()), 4),
                }
            )
            print(f"  tune {grid[-1]}", file=sys.stderr)
    r = ranks(shop, sample, ("hybrid",))["hybrid"]
    hybrid = {
        "recall@10": round(float((r > 0).mean()), 4),
        "mrr@10": round(float(np.where(r > 0, 1 / np.maximum(r, 1), 0).mean()), 4),
    }
    best = max(grid, key=lambda g: (g["recall@10"], g["mrr@10"]))
    weights = learned[half_life] if best["features"] == "learned" else FeatureWeights()
    info = {
        "grid": grid,
        "hybrid_on_same_queries": hybrid,
        "offline_feature_choice": {f"half_life_{h:g}": v for h, v in offline.items()},
        "best": best,
    }
    chosen = Personal(
        best["weight"], half_life, weights, offline[half_life]["offline_blend_weight"], learned[half_life]
    )
    return chosen, info


def crosslingual(shop: Shop, test: pd.DataFrame, rng: np.random.Generator, max_pairs: int = 0) -> dict:
    language = shop.data.items["language"].astype(str).to_numpy()
    english, chinese = language == "en", language == "zh"
    pairs = [(shop.table.position(e), shop.table.position(z)) for e, z in shop.truth["twins"]]
    twin_of = {z: e for e, z in pairs}
    if max_pairs:
        pairs = [pairs[i] for i in np.sort(rng.choice(len(pairs), min(max_pairs, len(pairs)), replace=False))]
    out: dict[str, dict] = {}
    for direction, (source, target, mask) in {
        "zh_title_to_en_twin": (1, 0, english),
        "en_title_to_zh_twin": (0, 1, chinese),
    }.items():
        res = {m: [] for m in ("lexical", "dense", "hybrid")}
        for pair in pairs:
            query = shop.table.products[pair[source]].title
            res["lexical"].append(
                rank_of([h.position for h in shop.lexical.search(query, k=K, allowed=mask).hits], pair[target])
            )
            res["dense"].append(rank_of(dense_only(shop, query, mask), pair[target]))
            res["hybrid"].append(
                rank_of([h.position for h in shop.hybrid.search(query, k=K, allowed=mask).hits], pair[target])
            )
        out[direction] = {m: summary(np.asarray(v), rng) for m, v in res.items()}
    logged = test[test["query"].str.contains(CJK) & test["item"].isin(list(twin_of))]
    res = {m: [] for m in ("lexical", "dense", "hybrid")}
    for row in logged.itertuples(index=False):
        target = twin_of[int(row.item)]
        res["lexical"].append(
            rank_of([h.position for h in shop.lexical.search(row.query, k=K, allowed=english).hits], target)
        )
        res["dense"].append(rank_of(dense_only(shop, row.query, english), target))
        res["hybrid"].append(
            rank_of([h.position for h in shop.hybrid.search(row.query, k=K, allowed=english).hits], target)
        )
    out["zh_log_query_to_en_twin"] = {m: summary(np.asarray(v), rng) for m, v in res.items()}
    return out


def finetuned_rows(args: argparse.Namespace, test: pd.DataFrame, train: pd.DataFrame, rng: np.random.Generator) -> dict:
    """Dense retrieval with the packaged MiniLM (zero-shot) and with its query tower fine-tuned on the
    training period's clicks only (:func:`shoprec.search.finetune.finetune_queries`, default settings),
    against the same MiniLM item vectors: the clicked item among the top 10 of the whole catalogue
    (no constraints), on the test queries."""
    from shoprec.search.finetune import finetune_queries, judgments_from_frame, normalise_query

    demo = generate_demo_shop(seed=args.seed, n_items=args.items, n_users=args.users, days=args.days)
    data = demo.to_dataset()
    table = ProductTable(products_from_dataset(data))
    cache_dir = Path(args.cache) / f"seed{args.seed}-{args.items}x{args.users}x{args.days}"
    minilm = load_encoder("minilm")
    vectors = item_vectors(data, minilm, cache_dir=cache_dir / "items-minilm", texts=item_texts(data, review_chars=0))
    frame = lambda f: f[["query", "item_id"]].astype({"item_id": str})  # noqa: E731
    start = time.perf_counter()
    result = finetune_queries(
        "minilm",
        vectors,
        judgments_from_frame(frame(train), table, "training queries"),
        judgments_from_frame(frame(test), table, "test queries"),
        cache_dir / "query-tower",
        progress=False,
    )
    seconds = time.perf_counter() - start
    texts = [normalise_query(q) for q in test["query"]]
    tuned = load_encoder(str(cache_dir / "query-tower"))
    encoded = {"minilm_zero_shot": minilm.encode(texts), "minilm_finetuned": tuned.encode(texts)}
    target = test["item"].to_numpy(np.int64)
    zh = test["query"].str.contains(CJK).to_numpy()
    seen = set(normalise_query(q) for q in train["query"])
    out = {
        "training_seconds": round(seconds, 1),
        "train_pairs": result.pairs,
        "steps": result.steps,
        "test_query_text_also_in_training_period": round(float(np.mean([t in seen for t in texts])), 4),
    }
    for name, q in encoded.items():
        top = np.argsort(-(q @ vectors.T), axis=1)[:, :K]
        r = np.array([rank_of(row.tolist(), t) for row, t in zip(top, target, strict=True)])
        out[name] = {"en": summary(r[~zh], rng), "zh": summary(r[zh], rng)}
    return out


def git(*cmd: str) -> str:
    return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--train-share", type=float, default=0.5, help="earliest share of clicked queries for tuning")
    parser.add_argument("--tune-queries", type=int, default=300, help="latest training queries the grid is run on")
    parser.add_argument("--test-queries", type=int, default=0, help="evaluate only the first N test queries (0: all)")
    parser.add_argument("--twin-pairs", type=int, default=150, help="twin pairs sampled for cross-lingual (0: all)")
    parser.add_argument(
        "--finetuned",
        action="store_true",
        help="only the fine-tuned query tower rows (MiniLM, trained on the training period): finetuned.json/.md",
    )
    parser.add_argument("--cache", default="/work/cache/search-demo", help="vector cache folder")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if not 0 < args.train_share < 1:
        parser.error(f"--train-share must be between 0 and 1, got {args.train_share}")
    rng = np.random.default_rng(0)
    if args.finetuned:
        write_finetuned(args, rng)
        return
    started = time.perf_counter()
    shop, log, timings = build(args)
    clicked = log[log["item"] >= 0].reset_index(drop=True)
    cut = int(round(args.train_share * len(clicked)))
    train, test = clicked.iloc[:cut], clicked.iloc[cut:]
    if args.test_queries:
        test = test.head(args.test_queries)
    boundary = int(test["timestamp"].iloc[0])
    print(f"{len(train)} training and {len(test)} test queries (test from t={boundary})", file=sys.stderr)
    start = time.perf_counter()
    personal, tuning = tune(shop, train, args.tune_queries)
    timings["tune_s"] = time.perf_counter() - start
    start = time.perf_counter()
    rows = ranks(shop, test, ("lexical", "dense", "hybrid", "personal", "rerank"), personal)
    timings["test_s"] = time.perf_counter() - start
    zh = test["query"].str.contains(CJK).to_numpy()
    languages = {"en": ~zh, "zh": zh, "all": np.ones(len(test), dtype=bool)}
    results = {lang: {m: summary(r[mask], rng) for m, r in rows.items()} for lang, mask in languages.items()}
    deltas = {
        lang: {
            "personal_minus_hybrid": paired(rows["hybrid"][mask], rows["personal"][mask], rng),
            "rerank_minus_hybrid": paired(rows["hybrid"][mask], rows["rerank"][mask], rng),
            "hybrid_minus_lexical": paired(rows["lexical"][mask], rows["hybrid"][mask], rng),
        }
        for lang, mask in languages.items()
    }
    start = time.perf_counter()
    cross = crosslingual(shop, test, rng, args.twin_pairs)
    timings["crosslingual_s"] = time.perf_counter() - start
    timings["total_s"] = time.perf_counter() - started
    report = {
        "command": "nice -n 10 .venv/bin/python benchmarks/search_demo_eval.py " + " ".join(sys.argv[1:]),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_search_files": git(
            "status", "--porcelain", "src/shoprec/search", "benchmarks/search_demo_eval.py"
        ),
        "shop": {"seed": args.seed, "items": args.items, "users": args.users, "days": args.days},
        "queries": {
            "logged": len(log),
            "clicked": len(clicked),
            "train": len(train),
            "test": len(test),
            "test_en": int((~zh).sum()),
            "test_zh": int(zh.sum()),
            "test_from": boundary,
        },
        "tuned": {
            "weight": personal.weight,
            "half_life": personal.half_life,
            "feature_weights": asdict(personal.weights),
            "rerank_weight": personal.rerank_weight,
            "rerank_feature_weights": asdict(personal.rerank_features),
            "on_queries": min(args.tune_queries, len(train)),
            **tuning,
        },
        "results": results,
        "paired": deltas,
        "crosslingual": cross,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_demo_eval.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    (out / "search_demo_eval.md").write_text(markdown(report))
    print(markdown(report))


def write_finetuned(args: argparse.Namespace, rng: np.random.Generator) -> None:
    """The same time split as the main run (clicked queries by time, first ``--train-share`` for training)."""
    log = generate_demo_shop(seed=args.seed, n_items=args.items, n_users=args.users, days=args.days)
    log = log.to_dataset().queries
    log = log.assign(query=log["query"].astype(str)).sort_values("timestamp", kind="stable")
    clicked = log[log["item"] >= 0].reset_index(drop=True)
    cut = int(round(args.train_share * len(clicked)))
    train, test = clicked.iloc[:cut], clicked.iloc[cut:]
    if args.test_queries:
        test = test.head(args.test_queries)
    rows = finetuned_rows(args, test, train, rng)
    report = {
        "command": "nice -n 10 .venv/bin/python benchmarks/search_demo_eval.py " + " ".join(sys.argv[1:]),
        "commit": git("rev-parse", "--short", "HEAD"),
        "train": len(train),
        "test": len(test),
        **rows,
    }
    lines = [
        f"Dense retrieval with MiniLM item vectors, whole catalogue, {len(test)} test queries "
        f"(query tower trained on the {len(train)} earlier clicked queries, {rows['training_seconds']} s; "
        f"{rows['test_query_text_also_in_training_period']:.0%} of test query texts also occur earlier).",
        "",
        "| query encoder | Recall@10 en | Recall@10 zh | MRR@10 en | MRR@10 zh |",
        "|---|---|---|---|---|",
    ]
    for name in ("minilm_zero_shot", "minilm_finetuned"):
        r = rows[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {fmt(r['en'], 'recall@10')} | {fmt(r['zh'], 'recall@10')} | "
            f"{fmt(r['en'], 'mrr@10')} | {fmt(r['zh'], 'mrr@10')} |"
        )
    lines += ["", f"Command: `{report['command']}` at commit {report['commit']}.", ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "finetuned.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    (out / "finetuned.md").write_text("\n".join(lines))
    print("\n".join(lines))


def fmt(s: dict, key: str) -> str:
    lo, hi = s[key.replace("@10", "_ci")]
    return f"{s[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def markdown(report: dict) -> str:
    tuned = report["tuned"]
    names = {
        "lexical": "lexical (BM25)",
        "dense": "dense (use-multilingual)",
        "hybrid": "hybrid (RRF)",
        "personal": f"hybrid + personal (weight {tuned['weight']}, half-life {tuned['half_life']:g}, "
        + ", ".join(f"{k} {v:g}" for k, v in tuned["feature_weights"].items() if v)
        + ")",
        "rerank": f"hybrid top 50 reranked by a personal blend (weight {tuned['rerank_weight']}, "
        + ", ".join(f"{k} {v:g}" for k, v in tuned["rerank_feature_weights"].items() if v)
        + ")",
    }
    q = report["queries"]
    lines = [
        f"Demo shop search logs (seed {report['shop']['seed']}, {report['shop']['items']} items): "
        f"{q['train']} early clicked queries for tuning, {q['test']} later ones for testing "
        f"({q['test_en']} English, {q['test_zh']} Chinese). Clicked item in the top 10; 95% intervals "
        "(Wilson for Recall, bootstrap for MRR).",
        "",
        "| method | Recall@10 en | Recall@10 zh | MRR@10 en | MRR@10 zh |",
        "|---|---|---|---|---|",
    ]
    res = report["results"]
    for m, name in names.items():
        lines.append(
            f"| {name} | {fmt(res['en'][m], 'recall@10')} | {fmt(res['zh'][m], 'recall@10')} | "
            f"{fmt(res['en'][m], 'mrr@10')} | {fmt(res['zh'][m], 'mrr@10')} |"
        )
    lines += [
        "",
        "Paired differences on the same queries (bootstrap 95% intervals):",
        "",
        "| difference | language | Recall@10 | MRR@10 |",
        "|---|---|---|---|",
    ]
    for lang, d in report["paired"].items():
        for name, v in d.items():
            lines.append(f"| {name.replace('_', ' ')} | {lang} | {fmt(v, 'recall@10')} | {fmt(v, 'mrr@10')} |")
    lines += [
        "",
        "Cross-lingual (target among the other language's listings only):",
        "",
        "| queries | n | lexical | dense | hybrid |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "zh_title_to_en_twin": "Chinese twin title -> English twin",
        "en_title_to_zh_twin": "English twin title -> Chinese twin",
        "zh_log_query_to_en_twin": "Chinese test query -> English twin of the clicked item",
    }
    for key, label in labels.items():
        c = report["crosslingual"][key]
        lines.append(
            f"| {label} | {c['hybrid']['n']} | "
            + " | ".join(fmt(c[m], "recall@10") for m in ("lexical", "dense", "hybrid"))
            + " |"
        )
    lines += [
        "",
        f"Command: `{report['command']}` at commit {report['commit']}"
        + (" (search files uncommitted: see JSON)" if report["uncommitted_search_files"] else "")
        + f"; timings (s): {report['timings_s']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
