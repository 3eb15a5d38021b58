"""Bilingual twins: Chinese listings that translate English listings of the demo shop.

Shops that sell in two languages often list one product twice, once per language. A share of the
catalogue's Chinese items is turned into such twins: each takes an English item of the same leaf
and copies its brand, latent quality and every word choice (noun, material, features, colour,
adjective, closing sentence, title template), then writes its title and description from the
aligned Chinese vocabulary, so the two texts say the same thing in two languages. The twin's price
stays within a few percent of the original (shops round and convert prices differently). Launch
date and listing popularity stay the twin's own: it is a separate listing of the same product.

The pairs are the ground truth of cross-lingual retrieval (a Chinese title should find its English
twin). Twins are drawn with their own random stream, so planting them leaves every other draw of
the generator unchanged.
"""

from __future__ import annotations

import numpy as np

from shoprec.data.demo.catalog import Catalog, price_bands, rank_within, write_text

TWIN_SHARE = 0.10
"""Twin pairs as a share of the catalogue (0.10: 300 pairs in a 3,000-item shop)."""
TWIN_PRICE_SPREAD = 0.05
"""Log-normal sigma of a twin's price around its English original's (about +-5%)."""


def plant_twins(rng: np.random.Generator, catalog: Catalog, share: float = TWIN_SHARE) -> np.ndarray:
    """Turn Chinese items into translations of English items of the same leaf, in place.

    Returns an (n_pairs, 2) int64 array of ``[english, chinese]`` item indices, sorted by the English
    index. There are ``round(share * len(catalog))`` pairs unless a leaf runs out of items of one
    language (then fewer); every item is in at most one pair.
    """
    en, zh = _pair_up(rng, catalog, round(share * len(catalog)))
    catalog.brand[zh] = catalog.brand[en]
    catalog.quality[zh] = catalog.quality[en]
    for slot in catalog.words.values():
        slot[zh] = slot[en]
    spread = rng.lognormal(0.0, TWIN_PRICE_SPREAD, len(zh))
    catalog.price[zh] = np.maximum(np.round(catalog.price[en] * spread) - 0.01, 0.99)
    catalog.band = price_bands(catalog.leaf, catalog.price)
    write_text(catalog, items=zh)
    order = np.argsort(en, kind="stable")
    return np.stack([en[order], zh[order]], axis=1).astype(np.int64)


def _pair_up(rng: np.random.Generator, catalog: Catalog, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_pairs`` random (English, Chinese) item pairs of the same leaf, no item twice.

    Both languages are shuffled; within each leaf the j-th Chinese item is paired with the j-th
    English one, and the first ``n_pairs`` Chinese items (in shuffled order) that have a partner win.
    """
    zh = rng.permutation(np.flatnonzero(catalog.zh))
    en = rng.permutation(np.flatnonzero(~catalog.zh))
    if n_pairs < 1 or len(zh) == 0 or len(en) == 0:
        return en[:0], zh[:0]
    zh_rank = rank_within(catalog.leaf[zh], np.arange(len(zh)))
    en_rank = rank_within(catalog.leaf[en], np.arange(len(en)))
    stride = max(len(zh), len(en)) + 1
    en_key = catalog.leaf[en].astype(np.int64) * stride + en_rank
    zh_key = catalog.leaf[zh].astype(np.int64) * stride + zh_rank
    by_key = np.argsort(en_key)
    pos = np.minimum(np.searchsorted(en_key, zh_key, sorter=by_key), len(en) - 1)
    partner = by_key[pos]
    has = en_key[partner] == zh_key
    chosen = np.flatnonzero(has)[:n_pairs]
    return en[partner[chosen]], zh[chosen]
