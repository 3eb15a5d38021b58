"""Search queries and reviews of the demo shop, written in each item's language.

Queries are what a shopper typed before clicking an item: words of the item's leaf vocabulary
(its noun, often with an adjective, colour, material, feature or brand), sometimes misspelt.
Reviews are a rating and one sentence for a fraction of purchases; ratings follow the item's
latent quality, so good items collect good reviews.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.data.demo.behaviour import PURCHASE, Events, Sessions
from shoprec.data.demo.catalog import Catalog
from shoprec.data.demo.phrases import REVIEWS
from shoprec.data.demo.users import Users
from shoprec.data.demo.words import ADJECTIVES, COLOURS, LEAVES
from shoprec.timeunits import DAY

TYPO_SHARE = 0.12
"""Share of English queries with one typo (Chinese: half as many, a dropped character)."""
REVIEW_SHARE = 0.15
"""Share of purchases that get a review."""


def _typo(text: str, r: np.ndarray) -> str:
    """One deletion, swap or doubled letter at a position chosen by ``r`` (three uniforms)."""
    if len(text) < 4:
        return text
    i = 1 + int(r[1] * (len(text) - 2))
    op = int(r[0] * 3)
    if op == 0:
        return text[:i] + text[i + 1 :]
    if op == 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + text[i] + text[i:]


def query_text(catalog: Catalog, item: int, pattern: int, other_noun: int, r: np.ndarray) -> str:
    """A query for ``item`` in its language; ``pattern`` picks which words join the noun."""
    leaf, zh = LEAVES[catalog.leaf[item]], bool(catalog.zh[item])
    words = leaf.zh if zh else leaf.en
    w = {k: int(v[item]) for k, v in catalog.words.items()}
    noun = words.nouns[other_noun if r[2] < 0.2 else w["noun"]]
    adj = ADJECTIVES[leaf.top][int(zh)][w["adj"]]
    colour = COLOURS[int(zh)][w["colour"]] if leaf.coloured else words.materials[w["material"]]
    parts = (
        [noun],
        [adj, noun],
        [colour, noun],
        [catalog.brand[item], noun],
        [noun, words.features[w["feature"]]],
        [words.materials[w["material"]], noun],
    )[pattern]
    if zh:
        text = "".join(parts) if pattern in (1, 2, 5) else " ".join(parts)
        return text[:-1] if r[0] < TYPO_SHARE / 2 and len(text) > 3 else text
    text = " ".join(parts).lower()
    return _typo(text, r) if r[0] < TYPO_SHARE else text


def search_log(rng: np.random.Generator, catalog: Catalog, users: Users, sessions: Sessions) -> pd.DataFrame:
    """The raw ``queries`` table: one query per search session, with the clicked item when there was one."""
    s = np.flatnonzero(sessions.search)
    item = sessions.first_item[s]
    pattern = rng.choice(6, len(s), p=[0.3, 0.15, 0.15, 0.15, 0.1, 0.15])
    other = rng.integers(0, 4, len(s))
    r = rng.random((len(s), 3))
    text = [query_text(catalog, it, p, o, rr) for it, p, o, rr in zip(item, pattern, other, r, strict=True)]
    clicked = np.where(sessions.search_click[s], catalog.item_id[item], None)
    return pd.DataFrame(
        {
            "user_id": users.user_id[sessions.user[s]],
            "query": text,
            "item_id": clicked,
            "timestamp": np.floor(sessions.start[s]).astype(np.int64),
        }
    )


def review_log(rng: np.random.Generator, catalog: Catalog, users: Users, events: Events, end: int) -> pd.DataFrame:
    """The raw ``reviews`` table: a rating (1-5) and a sentence for a fraction of purchases."""
    buys = events.take((events.event == PURCHASE) & (rng.random(len(events)) < REVIEW_SHARE))
    _, first = np.unique(buys.user * len(catalog) + buys.item, return_index=True)  # one review per user-item
    buys = buys.take(np.sort(first))
    when = buys.time + rng.uniform(1, 12, len(buys)) * DAY
    buys, when = buys.take(when < end), when[when < end]
    noise = rng.normal(0.0, 0.9, len(buys))
    rating = np.clip(np.round(3.9 + 0.8 * catalog.quality[buys.item] + noise), 1, 5).astype(np.int64)
    mood = np.where(rating <= 2, 0, np.where(rating == 3, 1, 2))
    pick = rng.integers(0, 12, len(buys))
    texts = []
    for item, m, p in zip(buys.item, mood, pick, strict=True):
        zh = bool(catalog.zh[item])
        leaf = LEAVES[catalog.leaf[item]]
        noun = (leaf.zh if zh else leaf.en).nouns[catalog.words["noun"][item]]
        options = REVIEWS["zh" if zh else "en"][m]
        texts.append(options[p % len(options)].format(noun=noun))
    return pd.DataFrame(
        {
            "user_id": users.user_id[buys.user],
            "item_id": catalog.item_id[buys.item],
            "rating": rating,
            "text": texts,
            "timestamp": np.floor(when).astype(np.int64),
        }
    )
