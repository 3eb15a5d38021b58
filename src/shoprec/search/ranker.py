"""Learned search ranker: LightGBM (lambdarank) over the features each hit carries.

A query's candidate list (the engine's best ``top`` hits after fusion and the stages before this
one) is a group; each hit's label is its graded relevance (judgments scaled to ``grades`` levels,
0 for a candidate nobody judged; a click counts as the top grade). Features
(:data:`FEATURES`): each source's score and rank (NaN where the source did not propose the
product: trees route missing values as a learned branch), the fused RRF score, the cross-encoder's
logit (``stage_crossencoder``, NaN below the cross-encoder's ``top``), and three cheap query facts:
the number of query words, the share of them the product holds, the number of words in its title.
The pipeline's :class:`~shoprec.pipeline.ranking.LearnedRanker` does the training (early stopping on
NDCG@10 of held-out queries) and the compiled prediction.

Saved as a folder without pickle: ``ranker.txt`` (LightGBM's text model) and ``ranker.json``
(feature names, settings, training counts).

>>> ranker = SearchRanker().fit(lists)                          # doctest: +SKIP
>>> ranker.save("models/search/ranker")                         # doctest: +SKIP
>>> stage = RankerStage("models/search/ranker", top=100)        # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from shoprec.errors import ShoprecError
from shoprec.pipeline.ranking import LearnedRanker, RankerConfig
from shoprec.search.query import ParsedQuery
from shoprec.search.tokenize import STOP_WORDS, tokenize, words

FEATURES = (
    "lexical_score",
    "lexical_rank",
    "dense_score",
    "dense_rank",
    "rrf",
    "stage_crossencoder",
    "query_words",
    "matched_share",
    "title_words",
    "lexical_rel",
    "dense_gap",
    "crossencoder_gap",
    "title_coverage",
    "last_word_matched",
    "numbers_matched",
)
"""Per hit. The last six compare a hit with the query's list or look at which query words it holds:
``lexical_rel`` BM25 score / the list's best, ``dense_gap`` and ``crossencoder_gap`` score minus the
list's best, ``title_coverage`` matched words / title words, ``last_word_matched`` whether the query's
last non-numeric word (in English often the head noun: "cordless *drill*") is in the product,
``numbers_matched`` the share of the query's numbers it holds (NaN without numbers)."""
MODEL_FILE, META_FILE = "ranker.txt", "ranker.json"


def hit_features(query: ParsedQuery, hits: Sequence, names: Sequence[str] = FEATURES) -> np.ndarray:
    """(len(hits), len(names)) float64 features; NaN where a hit does not carry one."""
    n_words = len(dict.fromkeys(query.terms)) or len(dict.fromkeys(query.constraint_terms))
    surface = [w for w in words(query.semantic_text or query.text) if w not in STOP_WORDS]
    numbers = {w for w in surface if any(c.isdigit() for c in w)}
    last = next((w for w in reversed(surface) if w not in numbers), None)
    best = {
        name: np.nanmax(values) if np.isfinite(values).any() else np.nan
        for name in ("lexical_score", "dense_score", "stage_crossencoder")
        for values in [np.array([h.features.get(name, np.nan) for h in hits], dtype=np.float64)]
    }
    out = np.full((len(hits), len(names)), np.nan)
    for row, hit in enumerate(hits):
        matched = set(hit.matched)
        title_words = len(tokenize(hit.product.title))
        features = dict(hit.features)
        features.update(
            query_words=float(n_words),
            matched_share=len(matched) / n_words if n_words else 0.0,
            title_words=float(title_words),
            lexical_rel=features.get("lexical_score", np.nan) / best["lexical_score"],
            dense_gap=features.get("dense_score", np.nan) - best["dense_score"],
            crossencoder_gap=features.get("stage_crossencoder", np.nan) - best["stage_crossencoder"],
            title_coverage=len(matched) / title_words if title_words else 0.0,
            last_word_matched=float(last in matched) if last is not None else np.nan,
            numbers_matched=len(numbers & matched) / len(numbers) if numbers else np.nan,
        )
        for col, name in enumerate(names):
            value = features.get(name, np.nan)
            out[row, col] = np.nan if value is None else value
    return out


def grades(relevance: np.ndarray, low: float, high: float, levels: int = 4) -> np.ndarray:
    """Relevance in [low, high] to whole grades 0..levels (NaN = not judged -> 0)."""
    relevance = np.asarray(relevance, dtype=np.float64)
    judged = ~np.isnan(relevance)
    if high <= low:
        return np.where(judged & (relevance >= high), levels, 0).astype(np.int32)
    scaled = np.round((np.nan_to_num(relevance, nan=low) - low) / (high - low) * levels)
    return np.clip(scaled, 0, levels).astype(np.int32)


class SearchRanker:
    """LightGBM lambdarank over hit features; one group per query."""

    def __init__(self, config: RankerConfig | None = None, features: Sequence[str] = FEATURES) -> None:
        # one thread: on the busy 2-core machine two LightGBM threads spent 1.8 s per round waiting for
        # each other on 3,600 rows (0.01 s on one)
        self.config = config or RankerConfig(objective="lambdarank", min_child_samples=20, threads=1)
        self.features = list(features)
        self.model = LearnedRanker(self.config)

    def fit(self, lists: Sequence[tuple[np.ndarray, np.ndarray]]) -> SearchRanker:
        """Train on (features (n, F), grades (n,)) per query; lists without a positive grade are skipped."""
        kept = [(x, y) for x, y in lists if len(y) and np.max(y) > 0]
        if len(kept) < 5:
            raise ShoprecError(
                f"search ranker: {len(kept)} of {len(lists)} queries have a relevant product among their candidates; "
                "at least 5 are needed. Give more judged queries or raise the candidates"
            )
        X = np.concatenate([x for x, _ in kept])
        y = np.concatenate([y for _, y in kept]).astype(np.int32)
        groups = np.array([len(y) for _, y in kept])
        self.model.fit(X, y, groups, self.features)
        self.model.fit_stats["skipped_queries"] = len(lists) - len(kept)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(np.asarray(X, dtype=np.float64))

    def importance(self) -> dict[str, float]:
        return self.model.importance()

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MODEL_FILE).write_text(self.model.to_string())
        meta = {"features": self.features, "config": asdict(self.config), "fit": self.model.fit_stats}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SearchRanker:
        folder = Path(folder)
        if not (folder / MODEL_FILE).is_file() or not (folder / META_FILE).is_file():
            raise ShoprecError(
                f"{folder}: not a search ranker folder (needs {MODEL_FILE} and {META_FILE}). "
                "Give a folder written by 'shoprec search-train' (its ranker/ part)"
            )
        meta = json.loads((folder / META_FILE).read_text())
        ranker = cls(RankerConfig(**meta["config"]), meta["features"])
        ranker.model = LearnedRanker.from_string((folder / MODEL_FILE).read_text(), ranker.config, meta["features"])
        ranker.model.fit_stats = meta.get("fit", {})
        return ranker


class RankerStage:
    """Search stage: the learned ranker's score for each of the current best ``top`` hits."""

    def __init__(self, path: str | Path, top: int = 100, name: str = "ranker") -> None:
        if top < 1:
            raise ShoprecError(f"ranker stage: top must be at least 1, got {top}")
        self.ranker = SearchRanker.load(path)
        self.top = int(top)
        self.name = name

    def score(self, query: ParsedQuery, hits: list) -> np.ndarray:
        if not hits:
            return np.zeros(0, dtype=np.float32)
        return self.ranker.predict(hit_features(query, hits, self.ranker.features))
