"""The Home Depot benchmark's search-engine passes, learned ranker and relevance model (see search_homedepot.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from shoprec.search.crossencoder import CrossEncoderStage
from shoprec.search.dense import DenseIndex
from shoprec.search.finetune import Judgments
from shoprec.search.hybrid import SearchEngine
from shoprec.search.ranker import FEATURES, RankerStage, SearchRanker, grades, hit_features

LOW, HIGH = 1.0, 3.0  # Home Depot's relevance scale
SIGNALS = ("bm25", "bm25_rank", "bm25_rel", "zero", "tuned", "tuned_rank", "tuned_gap", "rrf", "ce")
SIGNALS += ("query_words", "matched", "title", "title_coverage", "last_word", "numbers")
CANDIDATES = 200


def run_engine(hd, lexical, vectors, tuned, ce_dir, args: argparse.Namespace, parts: dict, models: Path) -> dict:  # noqa: ANN001
    """Search every term of each part with the engine (tuned dense index, cross-encoder stage on the top
    ``args.ce_top``, k = 100); train the ranker on the validation part; order the test part with it."""
    dense = DenseIndex(tuned, vectors, hd.table.alive)
    stage = CrossEncoderStage(ce_dir, top=args.ce_top, threads=args.threads)
    engine = SearchEngine(hd.table, lexical=lexical, dense=dense, stages=[stage])
    passes = {name: _pass(engine, part, name) for name, part in parts.items()}
    valid = passes["validation"]
    ranker = SearchRanker()
    ranker.config.seed = args.seed
    ranker.fit([(x, y) for x, y in zip(valid["features"], valid["grades"], strict=True)])
    ranker.save(models / "ranker")
    ranker_stage = RankerStage(models / "ranker", top=100)
    test = passes["test"]
    ordered = {}
    for term, (query, hits) in test["results"].items():
        scores = ranker_stage.score(query, hits)
        order = np.lexsort((np.arange(len(hits)), -scores))
        ordered[term] = np.array([hits[i].position for i in order], dtype=np.int64)
    return {
        "test": {"hybrid": test["hybrid"], "hybrid + cross-encoder": test["staged"], "full ranker": ordered},
        "ranker": {"importance": ranker.importance(), "fit": ranker.model.fit_stats, "features": list(FEATURES)},
        "engine_ms_per_query": {name: p["ms"] for name, p in passes.items()},
    }


def _pass(engine: SearchEngine, part: Judgments, name: str) -> dict:
    import time

    judged: dict[str, dict[int, float]] = {}
    for q, i, r in zip(part.query.tolist(), part.item.tolist(), part.relevance.tolist(), strict=True):
        judged.setdefault(q, {})[i] = r
    out = {"hybrid": {}, "staged": {}, "results": {}, "features": [], "grades": []}
    started = time.perf_counter()
    for term in tqdm(sorted(judged), desc=f"engine ({name})", unit="query"):
        result = engine.search(term, k=100)
        hits = result.hits
        positions = np.array([h.position for h in hits], dtype=np.int64)
        rrf = np.array([h.features.get("rrf", 0.0) for h in hits])
        out["hybrid"][term] = positions[np.lexsort((positions, -rrf))]
        out["staged"][term] = positions
        out["results"][term] = (result.query, hits)
        out["features"].append(hit_features(result.query, hits))
        relevance = np.array([judged[term].get(p, np.nan) for p in positions.tolist()])
        out["grades"].append(grades(relevance, LOW, HIGH))
    out["ms"] = round(1000 * (time.perf_counter() - started) / max(1, len(judged)), 1)
    return out


def _matrix(signals: dict) -> np.ndarray:
    columns = [np.where(np.isinf(signals[s]), np.nan, signals[s]) for s in SIGNALS]
    return np.column_stack(columns).astype(np.float64)


def fit_relevance_model(valid: tuple, test: tuple, seed: int) -> tuple[dict, np.ndarray, list[str]]:
    """LightGBM regression of judged relevance on the judged-pair signals (validation terms; a fifth of
    them for early stopping); predictions for the test pairs, clipped to the scale."""
    import lightgbm as lgb

    part, signals = valid
    X, y = _matrix(signals), part.relevance
    terms = np.unique(part.query.astype(str))
    held = set(terms[np.random.default_rng(seed).random(len(terms)) < 0.2].tolist())
    stop = np.array([q in held for q in part.query.tolist()])
    params = {
        "objective": "regression",
        "learning_rate": 0.03,
        "num_leaves": 15,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.8,
        "num_threads": 1,
        "seed": seed,
        "verbose": -1,
        "deterministic": True,
    }
    train = lgb.Dataset(X[~stop], y[~stop], feature_name=list(SIGNALS))
    check = lgb.Dataset(X[stop], y[stop], reference=train)
    booster = lgb.train(params, train, 1000, valid_sets=[check], callbacks=[lgb.early_stopping(50, verbose=False)])
    predicted = np.clip(booster.predict(_matrix(test[1]), num_iteration=booster.best_iteration), LOW, HIGH)
    gains = booster.feature_importance("gain")
    importance = {n: float(g / (gains.sum() or 1)) for n, g in zip(SIGNALS, gains, strict=True)}
    return {"importance": importance, "best_iteration": int(booster.best_iteration)}, predicted, list(SIGNALS)
