"""Autocomplete: completions of a typed prefix from popular past queries, then product titles.

Two ``marisa-trie`` tries hold the folded texts: the distinct past queries (the dataset's ``queries``
table, each with how many times it was searched) and the product titles. A prefix is folded the same
way; completions are past queries that start with it, most searched first, then titles that start
with it (alphabetical), without repeats. Titles of products added later are not in the trie until it
is rebuilt (:meth:`Suggester.from_dataset` or the constructor).

>>> [s.text for s in Suggester({"coffee mug": 12, "coffee beans": 3}, ["Coffee grinder"]).complete("cof")]
['coffee mug', 'coffee beans', 'coffee grinder']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shoprec.data.dataset import Dataset
from shoprec.search.tokenize import fold


@dataclass(frozen=True)
class Suggestion:
    text: str
    count: int  # times searched (0 for a title)
    source: str  # "query" or "title"


def _clean(text: str) -> str:
    return " ".join(fold(str(text)).split())


class Suggester:
    """Prefix completion over past queries (with counts) and titles."""

    def __init__(self, query_counts: Mapping[str, int], titles: Iterable[str]) -> None:
        import marisa_trie

        counts: Counter[str] = Counter()
        for query, n in query_counts.items():
            if _clean(query):
                counts[_clean(query)] += int(n)
        self.counts = counts
        self.queries = marisa_trie.Trie(list(counts))
        self.titles = marisa_trie.Trie([t for t in (_clean(t) for t in titles) if t])

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> Suggester:
        queries = dataset.queries
        counts = Counter(str(q) for q in queries["query"].dropna()) if queries is not None else Counter()
        titles = dataset.items["title"].dropna().astype(str) if "title" in dataset.items else []
        return cls(counts, titles)

    def complete(self, prefix: str, k: int = 10) -> list[Suggestion]:
        """Up to ``k`` completions of ``prefix``; an empty prefix gives the most searched queries."""
        key = _clean(prefix)
        queries = sorted(self.queries.keys(key), key=lambda q: (-self.counts[q], q))
        out = [Suggestion(q, self.counts[q], "query") for q in queries[:k]]
        if len(out) < k and key:
            seen = {s.text for s in out}
            titles = sorted(t for t in self.titles.keys(key) if t not in seen)
            out.extend(Suggestion(t, 0, "title") for t in titles[: k - len(out)])
        return out
