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
    """Per judged (term, product) pair: BM25 score, rank and share of the term's best; zero-shot and tuned
    cosine, tuned rank and gap to the best; RRF (as the engine computes it from the two ranks); the query
    words the title holds (share, coverage of the title, the last non-numeric word, the numbers)."""
    names = ("bm25", "bm25_rank", "bm25_rel", "zero", "tuned", "tuned_rank", "tuned_gap", "query_words")
    names += ("matched", "title", "title_coverage", "last_word", "numbers")
    rows = {k: [] for k in names}
    for term, items in _by_term(test):
        words = list(dict.fromkeys(tokenize(term)))
        bm25 = lexical.scores(words, size)
        cos_tuned = vectors @ tuned_q[index[term]]
        rows["bm25"].append(bm25[items])
        rows["bm25_rank"].append(np.where(bm25[items] > 0, full_ranks(bm25, items), np.inf))
        rows["bm25_rel"].append(bm25[items] / bm25.max() if bm25.max() > 0 else np.full(len(items), np.nan))
        rows["zero"].append(vectors[items] @ zero_q[index[term]])
        rows["tuned"].append(cos_tuned[items])
        rows["tuned_rank"].append(full_ranks(cos_tuned, items))
        rows["tuned_gap"].append(cos_tuned[items] - cos_tuned.max())
        rows["query_words"].append(np.full(len(items), len(words), dtype=float))
        matched = [set(lexical.matched(i, words)) for i in items.tolist()]
        title = np.array([len(tokenize(t)) for t in _titles(items)], dtype=float)
        rows["matched"].append(np.array([len(m) / max(1, len(words)) for m in matched]))
        rows["title"].append(title)
        rows["title_coverage"].append(np.array([len(m) for m in matched]) / np.maximum(title, 1))
        numbers = {w for w in words if any(c.isdigit() for c in w)}
        last = next((w for w in reversed(words) if w not in numbers), None)
        rows["last_word"].append(np.array([float(last in m) if last else np.nan for m in matched]))
        share = [len(numbers & m) / len(numbers) if numbers else np.nan for m in matched]
        rows["numbers"].append(np.array(share, dtype=float))
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
    parser.add_argument("--ce-positive-at", type=float, default=RELEVANT, help="judged relevance that is label 1")
    parser.add_argument("--ce-top", type=int, default=20)
    parser.add_argument("--ranker-terms", type=int, default=1200)
    parser.add_argument("--reuse", action="store_true", help="reuse models already in --cache")
    parser.add_argument("--render", action="store_true", help="only rewrite results.md from results.json in --out")
    args = parser.parse_args(argv)
    if args.render:
        (args.out / "results.md").write_text(markdown(json.loads((args.out / "results.json").read_text())))
        return 0
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
            positive_at=args.ce_positive_at,
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
            "seed": args.seed,
            "engine_ms_per_query": runs.get("engine_ms_per_query", {}),
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
    from engine_runs import fit_relevance_model

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
        "full ranker": predicted,  # judged lists and RMSE: the relevance model over the same signals
    }
    cuts = np.flatnonzero(part.query[1:] != part.query[:-1]) + 1
    groups = np.split(np.arange(len(part)), cuts)
    ndcg = {}
    for name, s in scores.items():
        values = [ndcg10(s[g], part.relevance[g] - 1.0) for g in groups]
        ndcg[name] = float(np.nanmean(values))
    mean = judged["validation"][0].relevance.mean()
    rmse = {
        "full ranker": float(np.sqrt(np.mean((predicted - part.relevance) ** 2))),
        "constant (training mean)": float(np.sqrt(np.mean((mean - part.relevance) ** 2))),
    }
    clock.lap("judged metrics")
    rows = []
    for name in lists:
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


def markdown(record: dict) -> str:
    tower, ce, ranker = record["query_tower"], record["crossencoder"], record.get("ranker", {})
    lines = [
        f"Home Depot search relevance, {record['terms']['test']:,} test terms (search terms split 60/20/20, seed "
        f"{record.get('seed', 0)}; none trained on). Recall over the {record['recall_terms']:,} test terms with a "
        "product judged >= 2.5, ranking all 54,667 titles; NDCG@10 over each term's judged products "
        "(gain = relevance - 1); RMSE of predicted relevance over the judged test pairs.",
        "",
        "| system | Recall@10 | Recall@100 | MRR | NDCG@10 (judged) | RMSE |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in record["rows"]:
        cells = [row.get(k) for k in ("recall@10", "recall@100", "mrr", "ndcg@10 judged", "rmse")]
        lines.append(f"| {row['system']} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    lines += [
        "",
        "- Full ranker: Recall and MRR of the engine's order after its ranker stage (LightGBM lambdarank over the "
        "hits' features, the cross-encoder's score among them, on the validation terms' engine hits); NDCG@10 over "
        "the judged lists and RMSE from the relevance model (LightGBM regression of the validation terms' "
        "judgments on the same signals computed for every judged pair), since a judged product outside the "
        "engine's top 100 has no hit to score.",
        f"- Constant predictor (validation mean) RMSE: {record['rmse']['constant (training mean)']:.3f}.",
        f"- Query tower: {tower['pairs']['train_pairs']:,} (term, product >= 2.5) pairs of "
        f"{tower['pairs']['train_queries']:,} fine-tuning terms, {tower['steps']} steps; validation terms "
        f"Recall@10 {tower['before']['recall@10']:.3f} -> {tower['after']['recall@10']:.3f}, Recall@100 "
        f"{tower['before']['recall@100']:.3f} -> {tower['after']['recall@100']:.3f}; "
        f"{tower['seconds']['training']:.0f} s of training.",
        f"- Cross-encoder ({ce['settings']['layers']} layers, max {ce['settings']['max_length']} tokens): "
        f"{ce['pairs']['train_pairs']:,} pairs ({ce['pairs']['train_negatives']:,} labelled 0), "
        f"{ce['steps']} steps, {ce['seconds']['training']:.0f} s; held-out validation pairs NDCG@10 "
        f"{ce['before']['ndcg@10']:.3f} -> {ce['after']['ndcg@10']:.3f}, pair accuracy "
        f"{ce['before']['pair_accuracy']:.3f} -> {ce['after']['pair_accuracy']:.3f}.",
    ]
    if ranker.get("importance"):
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(ranker["importance"].items())[:5])
        lines.append(f"- Ranker: {record['ranker_terms']:,} validation terms; gain shares: {top}.")
    if record.get("engine_ms_per_query"):
        ms = ", ".join(f"{k} {v} ms" for k, v in record["engine_ms_per_query"].items())
        lines.append(
            f"- Engine (parse, spelling, BM25, tuned dense, cross-encoder on the top 20, 2 threads): {ms} per query."
        )
    lines += [
        f"- Command: `{record['command']}` at commit {record['commit']}, started {record['started']} "
        f"(load average {record['load_average_at_start']}).",
        "- Seconds: " + ", ".join(f"{k} {v}" for k, v in record["seconds"].items()) + ".",
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
