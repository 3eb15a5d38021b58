"""Words for search: English stemmed with Snowball (PyStemmer), Chinese segmented with jieba.

Text is NFKC-normalised and case folded. Runs of CJK ideographs are cut by jieba in its search mode
(``cut_for_search``: a long word also yields its shorter dictionary words of two or more characters,
so ``平底锅`` is indexed as ``平底`` and ``平底锅``); every other run of letters and digits is one word,
stemmed by the English Snowball stemmer (``drills`` -> ``drill``). A short English stop-word list is
dropped. jieba reads its
dictionary from the installed package (no download); the first use takes about a second to build its
prefix table, which jieba caches in the system temporary folder (``jieba.cache``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_]+")
STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into",
     "is", "it", "of", "on", "or", "the", "to", "with", "without"}
)
"""Dropped from English text: frequent words that carry no product meaning."""


def fold(text: str) -> str:
    """NFKC + case folding, the form every comparison in search uses."""
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def words(text: str) -> list[str]:
    """Surface words of ``text`` (folded, not stemmed): jieba words for Chinese, letter/digit runs else."""
    out: list[str] = []
    for match in WORD.finditer(fold(text)):
        piece = match.group()
        if CJK_RUN.fullmatch(piece):
            out.extend(w for w in _jieba().cut_for_search(piece) if w.strip())
        else:
            out.append(piece)
    return out


def term(word: str) -> str:
    """The index form of one surface word: stemmed when it is Latin-script, as-is for Chinese."""
    return word if CJK_RUN.match(word) else _stem(word)


def tokenize(text: str) -> list[str]:
    """Index terms of ``text``: :func:`words`, stop words dropped, English stemmed.

    >>> tokenize("Cordless Drills for the garden")
    ['cordless', 'drill', 'garden']
    """
    return [term(w) for w in words(text) if w not in STOP_WORDS]
