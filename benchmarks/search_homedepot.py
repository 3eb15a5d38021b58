"""Home Depot search relevance: BM25, dense (zero-shot and fine-tuned), hybrid, cross-encoder, learned ranker.

    flock /work/coord/heavy.lock .venv/bin/python benchmarks/search_homedepot.py --cache /work/cache/hd
    .venv/bin/python benchmarks/search_homedepot.py --sample 0.05 --cache /tmp/hd --out /tmp/hd-results

Products: the 54,667 distinct product_uids, titles only (Latin-1 file). The distinct search terms
(normalised: lower case, single spaces) are split 60/20/20 with ``--seed`` into fine-tuning,
validation and test terms; nothing about a test term is trained on. ``--sample`` keeps a seeded share
of each part's terms (the catalogue stays whole) for quick runs.

- Item vectors: all-MiniLM-L6-v2 as int8 ONNX (``minilm-int8``), through the vector cache.
- Query tower (:mod:`shoprec.search.finetune`): MiniLM's query side fine-tuned on the fine-tuning
  terms' products judged >= 2.5 (softmax over the whole catalogue), item vectors unchanged.
- Cross-encoder (:mod:`shoprec.search.crossencoder`): the first 2 MiniLM layers, trained on the
  fine-tuning terms' judged products (relevance scaled to [0, 1]) plus unjudged products BM25 or the
  tuned dense index ranks in their top 20 (label 0).
- Hybrid: :class:`~shoprec.search.hybrid.SearchEngine` (query parsing, spelling, BM25 and the tuned
  dense index, reciprocal-rank fusion), its cross-encoder stage re-scoring the top 20, and the
  learned ranker (:mod:`shoprec.search.ranker`, LightGBM lambdarank over the hits' features, the
  cross-encoder's score among them) re-scoring the top 100, trained on ``--ranker-terms`` validation terms.
- Relevance model (for the competition's RMSE): LightGBM regression of the judged relevance on the
  same signals, trained on the same validation terms' judgments.

Metrics on the test terms: full-catalogue Recall@10/@100 of the products judged >= 2.5 (terms with
one), judged-list NDCG@10 (each term's judged products ordered by the system's score, gain =
relevance - 1) and RMSE of predicted relevance. Results: ``results.json`` and ``results.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from homedepot import DEFAULT_PATH, RELEVANT, load_homedepot  # noqa: E402
from shoprec.search.crossencoder import CrossEncoder, CrossEncoderSettings, train_cross_encoder  # noqa: E402
from shoprec.search.finetune import (  # noqa: E402
    Judgments,
    QueryTowerSettings,
    encode_queries,
    finetune_queries,
    retrieval_metrics,
    split_terms,
    top_items,
)
from shoprec.search.lexical import LexicalIndex  # noqa: E402
from shoprec.search.tokenize import tokenize  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "search-homedepot"
RRF_K, CANDIDATES = 60, 200  # the engine's defaults


class Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.start, 1)
        print(f"[{name}: {self.seconds[name]:.1f} s]", flush=True)
        self.start = now


def sample(part: Judgments, share: float, seed: int) -> Judgments:
    if share >= 1.0:
        return part
    terms = np.asarray(part.terms(), dtype=object)
    keep = terms[np.random.default_rng(seed).random(len(terms)) < share]
    return part.for_terms(set(keep.tolist()))


def ndcg10(scores: np.ndarray, gains: np.ndarray) -> float:
    """NDCG@10 of judged products ordered by ``scores`` (ties: listed order), gain = relevance - 1."""
    order = np.lexsort((np.arange(len(scores)), -np.nan_to_num(scores, nan=-np.inf)))[:10]
    discount = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.sort(gains)[::-1][:10]
    best = float((ideal * discount[: len(ideal)]).sum())
    return float((gains[order] * discount[: len(order)]).sum()) / best if best > 0 else np.nan


def full_ranks(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    """1-based rank of each of ``items`` in the full-catalogue order by ``scores`` (ties: position)."""
    out = np.empty(len(items))
    for j, i in enumerate(items.tolist()):
        s = scores[i]
        out[j] = 1 + int((scores > s).sum()) + int((scores[:i] == s).sum())
    return out


def judged_signals(test: Judgments, lexical, size, zero_q, tuned_q, index, vectors) -> dict:  # noqa: ANN001
    """Per judged (term, product) pair: BM25 score and rank, zero-shot and tuned cosine and rank, RRF
    (as the engine computes it from the two ranks), matched share, query and title word counts."""
    rows = {k: [] for k in ("bm25", "bm25_rank", "zero", "tuned", "tuned_rank", "query_words", "matched", "title")}
    for term, items in _by_term(test):
        words = list(dict.fromkeys(tokenize(term)))
        bm25 = lexical.scores(words, size)
        cos_tuned = vectors @ tuned_q[index[term]]
        rows["bm25"].append(bm25[items])
        rows["bm25_rank"].append(np.where(bm25[items] > 0, full_ranks(bm25, items), np.inf))
        rows["zero"].append(vectors[items] @ zero_q[index[term]])
        rows["tuned"].append(cos_tuned[items])
        rows["tuned_rank"].append(full_ranks(cos_tuned, items))
        rows["query_words"].append(np.full(len(items), len(words), dtype=float))
        rows["matched"].append(np.array([len(lexical.matched(i, words)) / max(1, len(words)) for i in items.tolist()]))
        rows["title"].append(np.array([len(tokenize(title)) for title in _titles(items)], dtype=float))
    out = {k: np.concatenate(v) for k, v in rows.items()}
    out["rrf"] = _rrf(out["bm25_rank"]) + _rrf(out["tuned_rank"])
    return out


_TITLES: list[str] = []


def _titles(items: np.ndarray) -> list[str]:
    return [_TITLES[i] for i in items.tolist()]


def _rrf(ranks: np.ndarray) -> np.ndarray:
    return np.where(ranks <= CANDIDATES, 1.0 / (RRF_K + ranks), 0.0)


def _by_term(judgments: Judgments):  # noqa: ANN202
    """(term, item positions) in the order of ``judgments`` (grouped; judgments are sorted by term)."""
    order = np.argsort(judgments.query.astype(str), kind="stable")
    q = judgments.query[order]
    cuts = np.flatnonzero(q[1:] != q[:-1]) + 1
    for chunk in np.split(order, cuts):
        yield judgments.query[chunk[0]], judgments.item[chunk]


def term_order(judgments: Judgments) -> np.ndarray:
    return np.argsort(judgments.query.astype(str), kind="stable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH, help="train.csv.zip of the competition")
    parser.add_argument("--cache", type=Path, required=True, help="folder for vectors and models (outside git)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=float, default=1.0, help="share of each part's terms kept (quick runs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tower-epochs", type=int, default=1)
    parser.add_argument("--tower-layers", type=int, default=2)
    parser.add_argument("--tower-lr", type=float, default=1e-4)
    parser.add_argument("--ce-layers", type=int, default=2)
    parser.add_argument("--ce-pairs", type=int, default=12_000)
    parser.add_argument("--ce-lr", type=float, default=1e-4)
    parser.add_argument("--ce-top", type=int, default=20)
    parser.add_argument("--ranker-terms", type=int, default=1200)
    parser.add_argument("--reuse", action="store_true", help="reuse models already in --cache")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    clock = Clock()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load = [round(x, 2) for x in os.getloadavg()]
    hd = load_homedepot(args.data)
    _TITLES.extend(hd.titles)
    parts = split_terms(hd.judgments, (0.6, 0.2, 0.2), seed=args.seed)
    train, valid, test = (sample(p, args.sample, args.seed + i) for i, p in enumerate(parts))
    print(f"terms: train {len(train.terms())}, validation {len(valid.terms())}, test {len(test.terms())}")
    clock.lap("load")

    from shoprec.text.encoders import SentenceTransformerEncoder, load_encoder
    from shoprec.text.vectors import VectorCache

    zero = load_encoder("minilm-int8")
    vectors = VectorCache(args.cache / "vectors", zero.name).encode(hd.titles, zero, batch_size=128, progress=True)
    clock.lap("item vectors")
    lexical = LexicalIndex().build(hd.table)
    clock.lap("bm25 index")

    models = args.cache / f"models-seed{args.seed}-sample{args.sample}"
    tower_dir = models / "query_tower"
    if not (args.reuse and (tower_dir / "query_tower.json").is_file()):
        settings = QueryTowerSettings(
            epochs=args.tower_epochs,
            train_layers=args.tower_layers,
            learning_rate=args.tower_lr,
            min_relevance=RELEVANT,
            seed=args.seed,
            threads=args.threads,
        )
        finetune_queries("minilm", vectors, train, valid, tower_dir, settings)
    tower = json.loads((tower_dir / "query_tower.json").read_text())
    print("query tower before", tower["before"], "after", tower["after"])
    clock.lap("query tower")

    tuned = SentenceTransformerEncoder(tower_dir, name="minilm-query-tuned")
    tuned.model.max_seq_length = 32
    all_terms = sorted(set(train.terms()) | set(valid.terms()) | set(test.terms()))
    zero_q = zero.encode(all_terms, batch_size=256, progress=False)
    tuned_q = encode_queries(tuned, all_terms, batch_size=256)
    index = {t: i for i, t in enumerate(all_terms)}
    clock.lap("query encoding")

    def bm25_top(term: str, k: int) -> np.ndarray:
        return lexical.search(list(dict.fromkeys(tokenize(term))), k, hd.table.alive)[0]

    # cross-encoder negatives: what BM25 and the tuned dense index put in their top 20
    ce_terms = train.terms()
    dense_top = top_items(tuned_q[[index[t] for t in ce_terms]], vectors, 20)
    candidates = {t: np.unique(np.r_[bm25_top(t, 20), dense_top[i]]) for i, t in enumerate(ce_terms)}
    ce_dir = models / "crossencoder"
    if not (args.reuse and (ce_dir / "crossencoder.json").is_file()):
        ce_settings = CrossEncoderSettings(
            layers=args.ce_layers,
            max_pairs=args.ce_pairs,
            learning_rate=args.ce_lr,
            seed=args.seed,
            threads=args.threads,
        )
        held = sample(valid, min(1.0, 300 / max(1, len(valid.terms()))), args.seed + 7)
        held_top = top_items(tuned_q[[index[t] for t in held.terms()]], vectors, 20)
        candidates.update({t: np.unique(np.r_[bm25_top(t, 20), held_top[i]]) for i, t in enumerate(held.terms())})
        train_cross_encoder("minilm", hd.titles, train, candidates, ce_dir, held, ce_settings)
    ce_record = json.loads((ce_dir / "crossencoder.json").read_text())
    print("cross-encoder before", ce_record["before"], "after", ce_record["after"])
    clock.lap("cross-encoder training")

    from engine_runs import run_engine

    rank_terms = valid.terms()
    if len(rank_terms) > args.ranker_terms:
        pick = np.random.default_rng(args.seed + 11).permutation(len(rank_terms))[: args.ranker_terms]
        rank_terms = sorted(rank_terms[i] for i in pick)
    ranker_valid = valid.for_terms(set(rank_terms))
    runs = run_engine(hd, lexical, vectors, tuned, ce_dir, args, {"validation": ranker_valid, "test": test}, models)
    clock.lap("engine runs and ranker")

    record = evaluate(hd, lexical, vectors, zero_q, tuned_q, index, test, ranker_valid, runs, ce_dir, args, clock)
    record.update(
        {
            "command": "python benchmarks/search_homedepot.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "commit": _commit(),
            "started": started,
            "load_average_at_start": load,
            "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
            "terms": {"train": len(train.terms()), "validation": len(valid.terms()), "test": len(test.terms())},
            "ranker_terms": len(rank_terms),
            "query_tower": {k: tower[k] for k in ("settings", "pairs", "before", "after", "steps", "seconds")},
            "crossencoder": {k: ce_record[k] for k in ("settings", "pairs", "before", "after", "steps", "seconds")},
            "seconds": clock.seconds,
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(record, indent=2, default=float))
    (args.out / "results.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def evaluate(hd, lexical, vectors, zero_q, tuned_q, index, test, valid, runs, ce_dir, args, clock) -> dict:  # noqa: ANN001, PLR0913
    from engine_runs import fit_relevance_model, judged_ranker_scores

    relevant = test.relevant(RELEVANT)
    terms = sorted(relevant)
    size = len(hd.table)
    lists: dict[str, list[np.ndarray]] = {"random": [], "bm25": [], "dense zero-shot": [], "dense fine-tuned": []}
    rng = np.random.default_rng(args.seed)
    for term in terms:
        lists["random"].append(rng.choice(size, 100, replace=False))
        lists["bm25"].append(lexical.search(list(dict.fromkeys(tokenize(term))), 100, hd.table.alive)[0])
    lists["dense zero-shot"] = list(top_items(zero_q[[index[t] for t in terms]], vectors, 100))
    lists["dense fine-tuned"] = list(top_items(tuned_q[[index[t] for t in terms]], vectors, 100))
    for name in ("hybrid", "hybrid + cross-encoder", "full ranker"):
        lists[name] = [runs["test"][name].get(t, np.zeros(0, np.int64)) for t in terms]
    truth = [relevant[t] for t in terms]
    recall = {name: retrieval_metrics(ranked, truth) for name, ranked in lists.items()}
    clock.lap("recall")

    ce = CrossEncoder(ce_dir, threads=args.threads)
    judged = {}
    for name, part in (("test", test), ("validation", valid)):
        order = term_order(part)
        part = part.select(order)
        signals = judged_signals(part, lexical, size, zero_q, tuned_q, index, vectors)
        signals["ce"] = ce.score_pairs(part.query.tolist(), [hd.titles[i] for i in part.item.tolist()], progress=True)
        judged[name] = (part, signals)
    clock.lap("judged signals")
    model, predicted, features = fit_relevance_model(judged["validation"], judged["test"], args.seed)
    part, signals = judged["test"]
    scores = {
        "random": rng.random(len(part)),
        "bm25": signals["bm25"],
        "dense zero-shot": signals["zero"],
        "dense fine-tuned": signals["tuned"],
        "hybrid": signals["rrf"],
        "hybrid + cross-encoder": signals["ce"],
        "full ranker": judged_ranker_scores(models_dir(args) / "ranker", part, signals),
        "relevance model": predicted,
    }
    cuts = np.flatnonzero(part.query[1:] != part.query[:-1]) + 1
    groups = np.split(np.arange(len(part)), cuts)
    ndcg = {}
    for name, s in scores.items():
        values = [ndcg10(s[g], part.relevance[g] - 1.0) for g in groups]
        ndcg[name] = float(np.nanmean(values))
    mean = judged["validation"][0].relevance.mean()
    rmse = {
        "relevance model": float(np.sqrt(np.mean((predicted - part.relevance) ** 2))),
        "constant (training mean)": float(np.sqrt(np.mean((mean - part.relevance) ** 2))),
    }
    clock.lap("judged metrics")
    rows = []
    for name in [*lists, "relevance model"]:
        row = {"system": name, "ndcg@10 judged": ndcg.get(name)}
        if name in recall:
            row.update({"recall@10": recall[name]["recall@10"], "recall@100": recall[name]["recall@100"]})
            row["mrr"] = recall[name]["mrr"]
        if name in rmse:
            row["rmse"] = rmse[name]
        rows.append(row)
    return {
        "rows": rows,
        "rmse": rmse,
        "recall_terms": len(terms),
        "ndcg_terms": len(groups),
        "relevance_model": {"features": features, "importance": model},
        "ranker": runs.get("ranker", {}),
    }


def models_dir(args: argparse.Namespace) -> Path:
    return args.cache / f"models-seed{args.seed}-sample{args.sample}"


def markdown(record: dict) -> str:
    lines = [
        f"Home Depot search relevance, test terms ({record['terms']['test']:,} terms; recall over "
        f"{record['recall_terms']:,} terms with a product judged >= 2.5 among 54,667 titles).",
        "",
        "| system | Recall@10 | Recall@100 | MRR | NDCG@10 (judged) | RMSE |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in record["rows"]:
        cells = [row.get(k) for k in ("recall@10", "recall@100", "mrr", "ndcg@10 judged", "rmse")]
        lines.append(f"| {row['system']} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    lines += [
        "",
        f"Constant predictor RMSE: {record['rmse']['constant (training mean)']:.3f}.",
        f"Command: `{record['command']}` at commit {record['commit']}, started {record['started']} "
        f"(load average {record['load_average_at_start']}).",
        "Seconds: " + ", ".join(f"{k} {v}" for k, v in record["seconds"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
        paths = ["benchmarks/search_homedepot.py", "benchmarks/engine_runs.py", "src/shoprec/search"]
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], capture_output=True, text=True, cwd=REPO)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
