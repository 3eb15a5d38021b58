"""One clean text per item, built from its catalogue fields and reviews, for the text encoders.

The text of an item is ``title. description. category path. brand`` followed by a short digest of
its reviews (most helpful first when the reviews carry a helpful-vote column, then most recent).
Every field is cleaned the same way:

- HTML is stripped: tags (``<b>``, ``<br/>``), comments and ``<script>``/``<style>`` blocks become a
  space, then entities (``&amp;``, ``&#39;``, ``&nbsp;``) are decoded.
- Whitespace runs (newlines, tabs, no-break and ideographic spaces) become one space; zero-width
  spaces and byte-order marks are removed.
- Emoji are **kept** (they can carry meaning, ``"❤️ gift for mum"``, and removing them from some
  inputs but not others would make equal products hash differently); items holding one are counted
  as ``with_emoji``. Any language passes through untouched: nothing is lower-cased, transliterated
  or Unicode-normalised.

An item without title and description falls back to its category and brand (``empty_text_fallback``);
one without any text at all gets :data:`PLACEHOLDER`, which carries no id so that such items share
one vector. A text longer than ``max_chars`` is cut at the last space before the limit (or at the
limit for unspaced scripts such as Chinese) and counted as ``truncated``. ``ItemTexts.report``
counts each case; nothing is changed silently.

>>> from shoprec.data.demo import generate_demo_shop
>>> texts = item_texts(generate_demo_shop(n_items=50, n_users=20, days=10).to_dataset())  # doctest: +SKIP
>>> texts.report["items"]                                                                   # doctest: +SKIP
50
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shoprec.data.dataset import Dataset

PLACEHOLDER = "product without a description"
"""Text of an item that has no title, description, category, brand or review text."""

HELPFUL_COLUMNS = ("helpful", "helpful_votes", "helpful_vote", "votes")
"""Review columns read as helpful-vote counts (first one present wins); reviews are digested most
helpful first, then most recent."""

REPORT_KEYS = (
    "items",
    "html_stripped",
    "missing_title",
    "missing_description",
    "empty_text_fallback",
    "placeholder",
    "with_reviews",
    "reviews_used",
    "review_html_stripped",
    "with_emoji",
    "truncated",
)

_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|</?([A-Za-z][A-Za-z0-9]*)\b[^<>]*>", re.S | re.I)
_INLINE_TAGS = "a abbr b bdi cite code em font i kbd mark q s small span strong sub sup u"
_INLINE = frozenset(_INLINE_TAGS.split())
"""Inline tags vanish (``<b>Red</b>.`` -> ``Red.``); every other tag becomes a space."""
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_SPACE = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u200b\ufeff]")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f]")
_END = (".", "!", "?", "。", "！", "？", "…")


@dataclass
class ItemTexts:
    """``texts[i]`` is the text of item index ``i``; ``report`` counts what cleaning did.

    Report keys (items, except where said): ``items``; ``html_stripped`` (a catalogue field held
    tags or entities); ``missing_title``; ``missing_description``; ``empty_text_fallback`` (no title
    and no description: text from category, brand and reviews); ``placeholder`` (no text at all);
    ``with_reviews``; ``reviews_used`` and ``review_html_stripped`` (reviews); ``with_emoji`` (kept);
    ``truncated`` (longer than ``max_chars``).
    """

    texts: list[str]
    report: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def lines(self) -> list[str]:
        """The report as readable lines (zero counts left out)."""
        return [f"{key.replace('_', ' ')}: {n:,}" for key, n in self.report.items() if n]


def _tag_gap(match: re.Match) -> str:
    name = match.group(2)
    return "" if name and name.lower() in _INLINE else " "


def clean_text(value: object) -> tuple[str, bool]:
    """``(cleaned text, had_html)``: HTML stripped, entities decoded, whitespace normalised."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "", False
    text = str(value)
    had_html = False
    if "<" in text:
        stripped = _TAG.sub(_tag_gap, text)
        had_html = stripped != text
        text = stripped
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
        had_html = True
    text = _INVISIBLE.sub("", text)
    return _SPACE.sub(" ", text).strip(), had_html


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars``, at the last space in the final fifth when there is one."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    if space >= 0.8 * max_chars:
        cut = cut[:space]
    return cut.rstrip()


def join_parts(parts: list[str]) -> str:
    """Non-empty parts joined as sentences: ``". "`` unless a part already ends a sentence."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out:
            out += " " if out.endswith(_END) else ". "
        out += part
    return out


def _clean_column(items: pd.DataFrame, name: str) -> tuple[list[str], np.ndarray]:
    """Cleaned values of one text column and a mask of the rows that held HTML."""
    if name not in items.columns:
        return [""] * len(items), np.zeros(len(items), dtype=bool)
    cleaned = [clean_text(v) for v in items[name].tolist()]
    return [t for t, _ in cleaned], np.array([h for _, h in cleaned], dtype=bool)


def review_digests(dataset: Dataset, review_chars: int) -> tuple[list[str], dict[str, int]]:
    """Per item, its review texts (most helpful, then most recent first) within ``review_chars``.

    Whole reviews are added while they fit; only a first review longer than the budget is cut.
    Returns ``(digests, counts)`` with counts ``reviews_used`` and ``review_html_stripped``.
    """
    out = [""] * dataset.n_items
    reviews = dataset.reviews
    if review_chars <= 0 or reviews is None or "text" not in reviews.columns or len(reviews) == 0:
        return out, {"reviews_used": 0, "review_html_stripped": 0}
    frame = pd.DataFrame({"item": reviews["item"].to_numpy(dtype=np.int64)})
    cleaned = [clean_text(v) for v in reviews["text"].tolist()]
    frame["text"] = [t for t, _ in cleaned]
    frame["html"] = [h for _, h in cleaned]
    helpful = next((c for c in HELPFUL_COLUMNS if c in reviews.columns), None)
    order = []
    if helpful:
        frame["helpful"] = pd.to_numeric(reviews[helpful], errors="coerce").to_numpy(dtype=np.float64)
        order.append("helpful")
    if "timestamp" in reviews.columns:
        frame["timestamp"] = reviews["timestamp"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        order.append("timestamp")
    frame = frame[(frame["item"] >= 0) & (frame["text"] != "")]
    if order:
        frame = frame.sort_values(order, ascending=False, na_position="last", kind="stable")
    frame = frame.sort_values("item", kind="stable")
    lengths = frame["text"].str.len() + 1  # (R,) chars each review takes with its separator
    start = lengths.groupby(frame["item"]).cumsum() - lengths
    kept = frame[(start == 0) | (start + lengths - 1 <= review_chars)]
    for item, texts in kept.groupby("item")["text"]:
        out[int(item)] = truncate(" ".join(texts), review_chars)
    return out, {"reviews_used": len(kept), "review_html_stripped": int(kept["html"].sum())}


def _compose(title: str, description: str, category: str, brand: str) -> str:
    """Title, description (when not a copy of the title), category path, brand (when not named yet)."""
    if description == title:
        description = ""
    named = f"{title} {description}".casefold()
    if brand and brand.casefold() in named:
        brand = ""
    return join_parts([title, description, category, brand])


def item_texts(dataset: Dataset, max_chars: int = 1000, review_chars: int = 300) -> ItemTexts:
    """The text to encode for every item of ``dataset`` (row ``i`` = item index ``i``).

    ``max_chars`` bounds the whole text; ``review_chars`` bounds the review digest (0 leaves reviews
    out). See the module docstring for the cleaning rules and the counts in ``report``.

    >>> texts = item_texts(dataset)                        # doctest: +SKIP
    >>> texts.texts[0], texts.report["truncated"]          # doctest: +SKIP
    ('Nordhaus 咖啡豆 单一产地 ... Home & Kitchen > Pantry > Coffee', 0)
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    items = dataset.items
    report = dict.fromkeys(REPORT_KEYS, 0)
    report["items"] = len(items)
    fields = {name: _clean_column(items, name) for name in ("title", "description", "category", "brand")}
    report["html_stripped"] = int(np.logical_or.reduce([mask for _, mask in fields.values()]).sum())
    title, description, category, brand = (fields[name][0] for name in fields)
    digests, review_counts = review_digests(dataset, review_chars)
    report.update(review_counts)
    texts = []
    for i in range(len(items)):
        report["missing_title"] += not title[i]
        report["missing_description"] += not description[i]
        text = join_parts([_compose(title[i], description[i], category[i], brand[i]), digests[i]])
        report["with_reviews"] += bool(digests[i])
        if not title[i] and not description[i] and text:
            report["empty_text_fallback"] += 1
        if not text:
            report["placeholder"] += 1
            text = PLACEHOLDER
        if len(text) > max_chars:
            report["truncated"] += 1
            text = truncate(text, max_chars)
        report["with_emoji"] += bool(_EMOJI.search(text))
        texts.append(text)
    return ItemTexts(texts=texts, report=report)
