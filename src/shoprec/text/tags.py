"""Item tags: key phrases from each item's own text ranked by the encoder (KeyBERT-style), plus the
item's category leaf and brand.

Candidates come from the cleaned title and description (see :func:`candidate_phrases`):

- Latin-script text is lower-cased and cut into chunks at punctuation, stopwords, numbers and
  one-letter tokens; the candidates are the 1-3 word n-grams inside a chunk (so a phrase never
  spans a comma or a stopword, and no candidate is a number).
- Chinese, Japanese and Korean text has no segmenter installed, so a light method is used: runs of
  CJK characters are cut at punctuation, spaces and common single-character function words
  (的, 了, 和, ...); a resulting chunk of 2-6 characters is a candidate, and chunks of 3 or more
  characters also give their 2-4 character sub-strings (``单一产地咖啡豆`` -> ``咖啡豆``, ``咖啡``,
  ``产地``...). The encoder's ranking weeds out the meaningless sub-strings.

All distinct candidates of all items are encoded once, in batches. Each item's candidates are then
ranked by cosine similarity to the item vector with maximal marginal relevance (MMR: ``lambda`` x
relevance - (1 - ``lambda``) x similarity to a phrase already picked) and the best ``top_n`` kept.

>>> tags = extract_tags(dataset, load_encoder("minilm-int8"), top_n=5)   # doctest: +SKIP
>>> tags_frame(dataset, tags).to_parquet("tags.parquet")                # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.text.encoders import PROGRESS_THRESHOLD, Encoder
from shoprec.text.itemtext import clean_text, join_parts
from shoprec.text.vectors import item_vectors

_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each either every few for from
further had has have having he her here hers him his how i if in into is it its itself just let
made make makes me more most much must my no nor not now of off on once one only or other our ours
out over own per same she should so some such than that the their theirs them then there these
they this those through to too under until up upon very via was we well were what when where
which while who whom why will with within without would yet you your yours
available perfect ideal great new pack set piece pieces size sizes
cm mm m km ml l g kg mg oz lb lbs in inch inches ft pcs pc x"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
"""English stopwords (plus listing filler and units): they split chunks and never start a phrase."""

CJK_FUNCTION_CHARS = "的了和与及或是在为把被也都很等着这那之其"
"""Single-character Chinese function words that end a CJK chunk (a light stand-in for a segmenter)."""

CJK_FILLER = ("出品", "可选", "适合", "非常", "一款")
"""Multi-character listing filler ("made by", "available", "suitable for") that also ends a CJK chunk."""

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W\d_{_CJK}](?:[^\W_{_CJK}]|['’-](?=[^\W_{_CJK}]))*|\d[\d.,]*|\S")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_CJK_SPLIT = re.compile("|".join([*CJK_FILLER, f"[{CJK_FUNCTION_CHARS}]"]))

MAX_WORDS = 3
CJK_MIN, CJK_MAX, CJK_WHOLE_MAX = 2, 4, 6
CJK_MIN_ITEMS = 2
"""A CJK sub-string (not a whole chunk) is a candidate only when this many items contain it: a light
word-discovery rule that drops most sub-strings straddling two words."""
OVERSELECT = 4
"""MMR ranks this many times ``top_n`` phrases; a phrase inside (or containing) a better one is then
skipped (``foam pillow`` after ``memory foam pillow``)."""


def _latin_chunks(tokens: list[str]) -> list[list[str]]:
    """Runs of content words between breaks (punctuation, stopwords, numbers, CJK, tokens with under
    two letters)."""
    chunks: list[list[str]] = [[]]
    for token in tokens:
        word = token[0].isalpha() and not _CJK_RUN.match(token)
        letters = sum(c.isalpha() for c in token)  # model codes need 2 letters: "ip65" yes, "x61" no
        if word and letters >= 2 and token not in STOPWORDS:
            chunks[-1].append(token)
        elif chunks[-1]:
            chunks.append([])
    return [c for c in chunks if c]


def _cjk_candidates(run: str) -> tuple[list[str], list[str]]:
    """``(whole chunks, sub-strings)`` of one run of CJK characters."""
    whole, parts = [], []
    for chunk in _CJK_SPLIT.split(run):
        if CJK_MIN <= len(chunk) <= CJK_WHOLE_MAX:
            whole.append(chunk)
        if len(chunk) >= 3:
            for size in range(CJK_MIN, min(CJK_MAX, len(chunk) - 1) + 1):
                parts.extend(chunk[i : i + size] for i in range(len(chunk) - size + 1))
    return whole, parts


def split_candidates(text: str, brand: str = "") -> tuple[list[str], list[str]]:
    """``(phrases, cjk_substrings)`` of ``text``: distinct, in order of appearance, ``brand`` left out."""
    text = text.lower()
    if brand.strip():
        text = text.replace(brand.strip().lower(), " | ")
    tokens = _TOKEN.findall(text)
    phrases: list[str] = []
    for chunk in _latin_chunks(tokens):
        for size in range(1, MAX_WORDS + 1):
            phrases.extend(" ".join(chunk[i : i + size]) for i in range(len(chunk) - size + 1))
    parts: list[str] = []
    for token in tokens:
        if _CJK_RUN.fullmatch(token):
            whole, sub = _cjk_candidates(token)
            phrases.extend(whole)
            parts.extend(sub)
    phrases = list(dict.fromkeys(phrases))
    return phrases, [p for p in dict.fromkeys(parts) if p not in set(phrases)]


def candidate_phrases(text: str, brand: str = "") -> list[str]:
    """Every candidate key phrase of one text (see module docstring), distinct, in order of appearance."""
    phrases, parts = split_candidates(text, brand)
    return phrases + parts


def corpus_candidates(texts: Sequence[str], brands: Sequence[str], min_items: int = CJK_MIN_ITEMS) -> list[list[str]]:
    """Candidates of each text; CJK sub-strings are kept only when ``min_items`` texts contain them."""
    split = [split_candidates(t, b) for t, b in zip(texts, brands, strict=True)]
    counts = Counter(p for _, parts in split for p in parts)
    return [phrases + [p for p in parts if counts[p] >= min_items] for phrases, parts in split]


def mmr(relevance: np.ndarray, candidates: np.ndarray, top_n: int, diversity: float = 0.4) -> list[int]:
    """Indices picked by maximal marginal relevance, best first.

    ``relevance`` (C,) similarity of each candidate to the item; ``candidates`` (C, dim) their unit
    vectors; ``diversity`` is ``1 - lambda`` (0 ranks by relevance alone). Similarities between
    candidates are computed one picked row at a time (C x C products of small matrices are slow).
    """
    n = len(relevance)
    if n == 0 or top_n <= 0:
        return []
    picked = [int(np.argmax(relevance))]
    closest = candidates @ candidates[picked[0]]  # (C,) max similarity to anything picked so far
    available = np.ones(n, dtype=bool)
    available[picked[0]] = False
    while len(picked) < min(top_n, n):
        score = np.where(available, (1 - diversity) * relevance - diversity * closest, -np.inf)
        best = int(score.argmax())
        picked.append(best)
        available[best] = False
        np.maximum(closest, candidates @ candidates[best], out=closest)
    return picked


def source_texts(dataset: Dataset) -> list[str]:
    """Per item, its cleaned title and description: where key phrases are drawn from."""
    items = dataset.items
    columns = [c for c in ("title", "description") if c in items.columns]
    values = [[clean_text(v)[0] for v in items[c].tolist()] for c in columns]
    return [join_parts([col[i] for col in values]) for i in range(len(items))]


def keyword_tags(
    texts: Sequence[str],
    vectors: np.ndarray,
    encoder: Encoder,
    top_n: int = 5,
    diversity: float = 0.4,
    progress: bool | None = None,
    brands: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    batch_size: int = 256,
) -> list[list[str]]:
    """The ``top_n`` key phrases of each text, ranked against its vector (row ``i`` of ``vectors``) by MMR.

    Every distinct candidate of all texts is encoded once. ``brands[i]`` is cut out of text ``i``
    and the phrase ``exclude[i]`` (lower case) is no candidate: :func:`extract_tags` adds both as
    tags of their own.
    """
    per_item = corpus_candidates(texts, brands if brands is not None else [""] * len(texts))
    if exclude is not None:
        per_item = [[p for p in phrases if p != skip] for phrases, skip in zip(per_item, exclude, strict=True)]
    vocab = {p: j for j, p in enumerate(dict.fromkeys(p for c in per_item for p in c))}
    phrase_vectors = encoder.encode(list(vocab), batch_size=batch_size, progress=progress)  # (P, dim)
    show = progress if progress is not None else len(texts) >= PROGRESS_THRESHOLD
    out = []
    for i, phrases in enumerate(tqdm(per_item, desc="ranking tags", unit="item", disable=not show)):
        if not phrases:
            out.append([])
            continue
        cand = phrase_vectors[[vocab[p] for p in phrases]]  # (C, dim)
        ranked = mmr(cand @ vectors[i], cand, OVERSELECT * top_n, diversity)
        out.append(_without_overlaps([phrases[j] for j in ranked], top_n))
    return out


def _overlaps(a: str, b: str) -> bool:
    """True when one phrase contains the other (whole words for spaced scripts)."""
    if " " in a or " " in b or not (_CJK_RUN.search(a) or _CJK_RUN.search(b)):
        return f" {a} " in f" {b} " or f" {b} " in f" {a} "
    return a in b or b in a


def _without_overlaps(ranked: list[str], top_n: int) -> list[str]:
    """The first ``top_n`` phrases of ``ranked`` that neither contain nor sit inside one kept before."""
    kept: list[str] = []
    for phrase in ranked:
        if not any(_overlaps(phrase, k) for k in kept):
            kept.append(phrase)
            if len(kept) == top_n:
                break
    return kept


def extract_tags(
    dataset: Dataset,
    encoder: Encoder,
    vectors: np.ndarray | None = None,
    top_n: int = 5,
    progress: bool | None = None,
    diversity: float = 0.4,
) -> list[list[str]]:
    """Tags of every item: up to ``top_n`` key phrases from its own text, then category leaf and brand.

    ``vectors`` are the item vectors from :func:`item_vectors` with the same ``encoder`` (computed
    when not given). Key phrases are lower case and never the brand or the leaf itself; leaf and
    brand keep the catalogue's spelling; no tag is repeated (case-insensitively).

    >>> extract_tags(dataset, load_encoder("use-multilingual"), top_n=3)[0]      # doctest: +SKIP
    ['stoneware travel mug', 'black', 'double-walled', 'Mugs', 'Hearth & Co']
    """
    if vectors is None:
        vectors = item_vectors(dataset, encoder, progress=progress)
    if vectors.shape != (dataset.n_items, encoder.dim):
        raise ShoprecError(
            f"item vectors have shape {vectors.shape}, expected ({dataset.n_items}, {encoder.dim}) for "
            f"encoder '{encoder.name}': compute them with item_vectors(dataset, encoder)"
        )
    items = dataset.items
    leaves = [clean_text(c)[0].split(">")[-1].strip() for c in items["category"].tolist()]
    brands = [clean_text(b)[0] for b in items["brand"].tolist()]
    skip = [leaf.lower() for leaf in leaves]
    keywords = keyword_tags(source_texts(dataset), vectors, encoder, top_n, diversity, progress, brands, skip)
    out = []
    for words, leaf, brand in zip(keywords, leaves, brands, strict=True):
        tags = list(words)
        seen = {t.casefold() for t in tags}
        for extra in (leaf, brand):
            if extra and extra.casefold() not in seen:
                tags.append(extra)
                seen.add(extra.casefold())
        out.append(tags)
    return out


def tags_frame(dataset: Dataset, tags: Sequence[Sequence[str]]) -> pd.DataFrame:
    """``item_id`` and ``tags`` (a list column), one row per item; saves as Parquet as is."""
    if len(tags) != dataset.n_items:
        raise ShoprecError(f"got tags for {len(tags)} items, the dataset has {dataset.n_items}: give one list per item")
    return pd.DataFrame({"item_id": dataset.items["item_id"].astype(str).to_numpy(), "tags": [list(t) for t in tags]})


TAGS_COLUMN = "tags"
"""Items column that holds each item's tags (a list of strings) once :func:`with_tags` has run."""


def with_tags(dataset: Dataset, tags: Sequence[Sequence[str]]) -> Dataset:
    """A copy of ``dataset`` whose items table carries ``tags`` (one list per item, in item order).

    The column is a free item attribute: ``Dataset.save`` writes it to ``items.parquet`` and
    ``Dataset.load`` reads it back, so tags travel with the catalogue to explanations and filters.
    """
    frame = tags_frame(dataset, tags)
    items = dataset.items.copy()
    items[TAGS_COLUMN] = frame["tags"].to_numpy()
    return dataset.with_items(items)


def item_tags(dataset: Dataset) -> list[list[str]] | None:
    """Each item's stored tags, or None when the catalogue has none.

    Tags come from the ``tags`` column written by :func:`with_tags`, or else from a ``tags``
    attribute that arrived with the shop's own item file (a list, or text split at commas).
    """
    items = dataset.items
    if TAGS_COLUMN in items.columns:
        values = items[TAGS_COLUMN].tolist()
    elif "attributes" in items.columns:
        attributes = [json.loads(a) if isinstance(a, str) and a else {} for a in items["attributes"].tolist()]
        if not any(TAGS_COLUMN in a for a in attributes):
            return None
        values = [a.get(TAGS_COLUMN) for a in attributes]
    else:
        return None
    return [_as_tag_list(v) for v in values]


def _as_tag_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return [str(t) for t in value]  # a list, or the numpy array Parquet gives back
