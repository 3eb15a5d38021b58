"""Items added through the API since a version was trained, served by their text: the neighbours of a
new anchor, and new items blended into a trained list where their text is closer to the shopper's."""

from __future__ import annotations

import numpy as np

from shoprec.pipeline.context import UserContext
from shoprec.service.feedcache import Proposal
from shoprec.service.overlay import NewItems
from shoprec.service.served import Filters
from shoprec.service.store.base import Event
from shoprec.service.versions import Deployed

NEW_ITEM_SOURCE = "new-item-text"
Columns = tuple[list, list, list, list]
"""A list as (item ids, scores, sources, shares)."""


def text_neighbours(dep: Deployed, new: NewItems, item_id: str, depth: int) -> Proposal:
    """Trained items nearest to a new item's text (new items join in :func:`blend_new`)."""
    sims = dep.item_vectors @ new.vectors[new.ids.index(item_id)]
    order = np.argsort(-sims, kind="stable")[:depth]
    note = f"{item_id} was added after version {dep.version} was trained: similar items by text"
    ids = dep.info.item_id[order].tolist()
    return Proposal(ids, sims[order].astype(float).tolist(), ["text"] * len(ids), [{}] * len(ids), [note])


def query_vector(
    dep: Deployed, new: NewItems, ctx: UserContext, live: list[Event], anchor: int | None, item_id: str | None
) -> np.ndarray | None:
    """The text direction new items are matched to: the anchor's vector for an item feed, else the
    mean of the shopper's recent items (trained and new); None when there are no new items."""
    if not len(new):
        return None
    if anchor is not None:
        if anchor >= 0:
            return dep.item_vectors[anchor]
        return new.vectors[new.ids.index(item_id)]
    recent = ctx.recent(20)
    parts = [dep.item_vectors[recent]] if len(recent) else []
    live_new = [new.ids.index(e.item_id) for e in live if e.item_id in new.ids]
    if live_new:
        parts.append(new.vectors[live_new])
    if not parts:
        return None
    query = np.vstack(parts).mean(axis=0)
    norm = np.linalg.norm(query)
    return query / norm if norm > 0 else None


def blend_new(
    dep: Deployed,
    new: NewItems,
    query: np.ndarray,
    columns: Columns,
    k: int,
    slots: int,
    filters: Filters,
    exclude: str | None,
) -> Columns:
    """Put brand-new items whose text is closer to ``query`` than a listed item's text just
    before that item; at most ``slots`` of them."""
    items = columns[0]
    sims = new.vectors @ query
    allowed = [j for j in np.argsort(-sims).tolist() if new.ids[j] != exclude and filters.passes(new.records[j])]
    seen = set(items)
    allowed = [j for j in allowed if new.ids[j] not in seen][:slots]
    if not allowed:
        return columns
    index = dep.item_indices(items[:k])
    listed = dep.item_vectors[index] @ query if len(index) else np.empty(0)
    out = [(*row, sim) for row, sim in zip(zip(*(c[:k] for c in columns), strict=True), listed.tolist(), strict=True)]
    for j in allowed:
        at = next((p for p, row in enumerate(out) if sims[j] > row[4]), len(out))
        if at < k:
            out.insert(at, (new.ids[j], float(sims[j]), NEW_ITEM_SOURCE, {}, float(sims[j])))
    out = out[:k]
    return tuple([r[c] for r in out] for c in range(4))
