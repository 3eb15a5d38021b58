"""Train a shop's search models in one call: query tower, cross-encoder and (with a validation split) ranker.

Judgments come from a CSV (``query,item_id,relevance``) or, without one, from the dataset's search
log (``queries``: a clicked item is relevance 1). The distinct query texts are split (seeded) into
training, validation and test terms: the query tower and the cross-encoder learn from the training
terms, the ranker from the validation terms (searched with the engine, the cross-encoder stage
included), and every before/after figure in the manifest is measured on the test terms, which nothing
was trained on. The output folder::

    DIR/query_encoder/    sentence-transformers folder (queries); item vectors stay the item encoder's
    DIR/crossencoder/     Hugging Face folder (CrossEncoderStage)
    DIR/ranker/           ranker.txt + ranker.json (RankerStage), when the validation terms allow one
    DIR/manifest.json     base models, judgments and split counts, settings, held-out metrics, seconds

>>> manifest = train_search(dataset, "models/search")               # doctest: +SKIP
>>> manifest["query_tower"]["before"]["recall@10"], manifest["query_tower"]["after"]["recall@10"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.search.crossencoder import CrossEncoderSettings, CrossEncoderStage, train_cross_encoder
from shoprec.search.dense import DenseIndex, product_text
from shoprec.search.finetune import (
    Judgments,
    QueryTowerSettings,
    encode_queries,
    finetune_queries,
    read_judgments,
    retrieval_metrics,
    split_terms,
    top_items,
)
from shoprec.search.lexical import LexicalIndex
from shoprec.search.products import ProductTable, products_from_dataset
from shoprec.search.ranker import SearchRanker, grades, hit_features
from shoprec.search.tokenize import tokenize

MANIFEST = "manifest.json"
ITEM_ENCODERS = ("minilm", "minilm-int8")
"""Item encoders whose vectors live in the space the MiniLM query tower starts from."""


def judgments_from_log(dataset: Dataset, table: ProductTable) -> Judgments:
    """(query, clicked item, relevance 1) from the dataset's ``queries`` table; searches without a
    click on a catalogue item are counted in ``dropped``."""
    from shoprec.search.finetune import judgments_from_frame

    queries = dataset.queries
    if queries is None or len(queries) == 0:
        raise ShoprecError(
            "no judgments: the dataset has no search log (queries table) and no --judgments file was given. "
            "Give a CSV with columns query,item_id,relevance or a dataset with a queries table"
        )
    item = queries["item"].to_numpy().astype(np.int64)
    clicked = item >= 0
    ids = [table.products[i].item_id for i in item[clicked].tolist()]
    frame = queries.loc[clicked, ["query"]].assign(item_id=ids)
    judged = judgments_from_frame(frame, table, source="queries table")
    judged.dropped["search without a click"] = int((~clicked).sum())
    return judged


def train_search(
    dataset: Dataset,
    out_dir: str | Path,
    judgments: str | Path | None = None,
    item_encoder: str = "minilm-int8",
    cache_dir: str | Path | None = None,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    tower: QueryTowerSettings | None = None,
    cross: CrossEncoderSettings | None = None,
    progress: bool = True,
) -> dict:
    """Train the search models of ``dataset`` into ``out_dir`` (module docstring); returns the manifest."""
    from shoprec.text.encoders import SentenceTransformerEncoder, load_encoder
    from shoprec.text.vectors import item_vectors

    if item_encoder not in ITEM_ENCODERS:
        raise ShoprecError(
            f"item encoder '{item_encoder}': the query tower is fine-tuned from MiniLM, so the item vectors "
            f"must come from {' or '.join(ITEM_ENCODERS)}"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MANIFEST).exists())):
        raise ShoprecError(f"{out_dir}: exists and is not an earlier search-train folder. Give a new or empty folder")
    clock = {"start": time.perf_counter()}
    table = ProductTable(products_from_dataset(dataset))
    judged = read_judgments(judgments, table) if judgments else judgments_from_log(dataset, table)
    if len(judged) == 0:
        raise ShoprecError(f"no usable judgments ({judged.dropped}). Check the query and item_id columns")
    train, valid, test = split_terms(judged, split, seed=seed)
    if len(train) == 0 or len(test) == 0:
        raise ShoprecError(
            f"{len(judged.terms())} distinct queries are too few to split {split} into training and test terms. "
            "Give more judged queries"
        )
    low = float(judged.relevance.min())
    tower = tower or QueryTowerSettings(min_relevance=low, seed=seed)
    cross = cross or CrossEncoderSettings(seed=seed)
    vectors = item_vectors(dataset, load_encoder(item_encoder), cache_dir=cache_dir, progress=progress)
    clock["vectors"] = time.perf_counter()

    tower_result = finetune_queries("minilm", vectors, train, test, out_dir / "query_encoder", tower, progress)
    clock["query tower"] = time.perf_counter()
    query_encoder = SentenceTransformerEncoder(out_dir / "query_encoder", name="query_encoder")
    texts = [product_text(p) for p in table.products]
    lexical = LexicalIndex().build(table)
    candidates = _candidates(train.terms() + test.terms(), query_encoder, vectors, lexical, table)
    ce_result = train_cross_encoder("minilm", texts, train, candidates, out_dir / "crossencoder", test, cross, progress)
    clock["cross-encoder"] = time.perf_counter()
    ranker = _train_ranker(
        table, lexical, query_encoder, vectors, out_dir, valid, test, judged, cross.threads, tower.min_relevance
    )
    clock["ranker"] = time.perf_counter()
    marks = list(clock.items())
    seconds = {name: round(t - marks[i][1], 2) for i, (name, t) in enumerate(marks[1:])}
    manifest = {
        "base": "minilm",
        "item_encoder": item_encoder,
        "judgments": {
            "source": str(judgments) if judgments else "queries table (clicks)",
            "pairs": len(judged),
            "queries": len(judged.terms()),
            "dropped": judged.dropped,
        },
        "split": {"shares": list(split), "seed": seed, **{n: len(p.terms()) for n, p in _parts(train, valid, test)}},
        "query_tower": _summary(tower_result.to_dict()),
        "crossencoder": _summary(ce_result.to_dict()),
        "ranker": ranker,
        "settings": {"query_tower": asdict(tower), "crossencoder": asdict(cross)},
        "seconds": seconds,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=float))
    return manifest


def _parts(train: Judgments, valid: Judgments, test: Judgments) -> list[tuple[str, Judgments]]:
    return [("train_queries", train), ("validation_queries", valid), ("test_queries", test)]


def _summary(result: dict) -> dict:
    return {k: result[k] for k in ("pairs", "before", "after", "steps", "losses", "seconds")}


def _candidates(terms, encoder, vectors, lexical, table, k: int = 20) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Each term's top ``k`` by BM25 and by the tuned query tower: the cross-encoder's negatives pool."""
    dense = top_items(encode_queries(encoder, list(terms)), vectors, k) if terms else []
    return {
        t: np.unique(np.r_[lexical.search(tokenize(t), k, table.alive)[0], dense[i]]).astype(np.int64)
        for i, t in enumerate(terms)
    }


def _train_ranker(table, lexical, query_encoder, vectors, out_dir, valid, test, judged, threads, min_relevance) -> dict:  # noqa: ANN001, PLR0913, E501
    """Search the validation terms with the engine (cross-encoder stage on), fit the ranker on their
    graded candidate lists, and compare the test terms' Recall@10 without and with it."""
    from shoprec.search.hybrid import SearchEngine

    if len(valid) == 0:
        return {"trained": False, "reason": "no validation terms"}
    stage = CrossEncoderStage(out_dir / "crossencoder", top=20, threads=threads)
    engine = SearchEngine(table, lexical=lexical, dense=DenseIndex(query_encoder, vectors, table.alive), stages=[stage])
    low, high = float(judged.relevance.min()), float(judged.relevance.max())
    lists = [_graded(engine, valid, term, low, high)[2:] for term in valid.terms()]
    try:
        ranker = SearchRanker().fit(lists)
    except ShoprecError as err:
        return {"trained": False, "reason": str(err)}
    ranker.save(out_dir / "ranker")
    before, after, truth = [], [], []
    for term, positions in test.relevant(min_relevance).items():
        query, hits, _, _ = _graded(engine, test, term, low, high)
        scores = ranker.predict(hit_features(query, hits))
        before.append([h.position for h in hits])
        after.append([hits[i].position for i in np.lexsort((np.arange(len(hits)), -scores))])
        truth.append(positions)
    metrics = {"hybrid + cross-encoder": retrieval_metrics(before, truth), "ranker": retrieval_metrics(after, truth)}
    return {"trained": True, "fit": ranker.model.fit_stats, "importance": ranker.importance(), "test": metrics}


def _graded(engine, part: Judgments, term: str, low: float, high: float) -> tuple:  # noqa: ANN001
    """(parsed query, hits, features, grades) of one term's top 100 engine hits."""
    result = engine.search(term, k=100)
    mine = part.select(part.query == term)
    relevance = dict(zip(mine.item.tolist(), mine.relevance.tolist(), strict=True))
    labels = np.array([relevance.get(h.position, np.nan) for h in result.hits])
    return result.query, result.hits, hit_features(result.query, result.hits), grades(labels, low, high)
