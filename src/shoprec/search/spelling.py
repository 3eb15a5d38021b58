"""Typo tolerance: query words the catalogue does not know are replaced by the nearest word it does.

The vocabulary is every Latin-script word (folded, not stemmed) of the products' titles, brands,
category paths and tags, with how many products use it. A query word of at least ``min_length``
letters that is not in the vocabulary is compared with it by optimal-string-alignment distance
(``rapidfuzz``: a swap of two neighbouring letters counts 1, so ``nordhuas`` is 1 from ``nordhaus``);
the nearest word within ``max_distance(word)`` wins, ties going to the word more products use, then
alphabetical order. Numbers, Chinese words and known words are never changed.

>>> speller = SpellCorrector.from_products(table.products)     # doctest: +SKIP
>>> speller.correct_text("nordhuas kettle")                    # doctest: +SKIP
('nordhaus kettle', [('nordhuas', 'nordhaus')])
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from shoprec.search.products import Product
from shoprec.search.tokenize import STOP_WORDS, fold

LATIN_WORD = re.compile(r"[^\W\d_]+")


def max_distance(word: str) -> int:
    """Edits allowed for a word: none below 4 letters, 1 up to 7, 2 from 8."""
    return 0 if len(word) < 4 else 1 if len(word) < 8 else 2


class SpellCorrector:
    """Corrects query words against a catalogue vocabulary (see the module docstring)."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
        self.words = sorted(counts)

    @classmethod
    def from_products(cls, products: Iterable[Product]) -> SpellCorrector:
        counts: Counter[str] = Counter()
        for p in products:
            text = " ".join([p.title, p.brand, p.category, p.tags])
            counts.update(set(LATIN_WORD.findall(fold(text))))
        return cls(counts)

    def add(self, products: Iterable[Product]) -> None:
        """Learn the words of new or changed products (words of removed ones are kept: harmless)."""
        for word, n in SpellCorrector.from_products(products).counts.items():
            if word not in self.counts:
                self.words.append(word)
            self.counts[word] += n
        self.words.sort()

    def correct(self, word: str) -> str:
        """The nearest known word to ``word`` within :func:`max_distance`, or ``word`` itself."""
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        limit = max_distance(word)
        if limit == 0 or word in self.counts or word in STOP_WORDS or not LATIN_WORD.fullmatch(word):
            return word
        found = process.extract(word, self.words, scorer=OSA.distance, score_cutoff=limit, limit=None)
        if not found:
            return word
        best = min(found, key=lambda hit: (hit[1], -self.counts[hit[0]], hit[0]))
        return best[0]

    def correct_text(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """``text`` (folded) with unknown Latin words corrected, and the ``(typed, used)`` pairs."""
        changes: list[tuple[str, str]] = []

        def fix(match: re.Match[str]) -> str:
            word = match.group()
            better = self.correct(word)
            if better != word:
                changes.append((word, better))
            return better

        return LATIN_WORD.sub(fix, fold(text)), changes
