"""The one call the service and the CLI make: external ids in, a JSON-ready bundle out.

>>> rec = BundleRecommender().fit(dataset)                                      # doctest: +SKIP
>>> recommend_bundle(rec, items=["P00007"], budget=120, max_size=3)["items"]    # doctest: +SKIP
[{'item_id': 'P00007', 'role': 'anchor', ...}, {'item_id': 'P00211', 'role': 'added', ...}]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shoprec.bundles.explain import explain_bundle
from shoprec.bundles.objective import BundleConstraints
from shoprec.bundles.recommender import Anchor, BundleRecommender
from shoprec.errors import DataError, ModelError


def _indices(rec: BundleRecommender, ids: Sequence[str], what: str) -> tuple[int, ...]:
    """Item ids -> indices; an unknown id is an error naming it."""
    ids = [str(i) for i in ids]
    found = rec.dataset.item_vocab.index(np.array(ids, dtype=object)) if ids else np.empty(0, np.int64)
    for item_id, index in zip(ids, found.tolist(), strict=True):
        if index < 0:
            raise DataError(
                f"unknown {what} '{item_id}': not in the catalogue of {rec.n_items:,} items",
                column="item_id",
                fix="Check the id (ids are case-sensitive) or refit on a catalogue that holds it",
            )
    return tuple(int(i) for i in found.tolist())


def recommend_bundle(
    rec: BundleRecommender,
    *,
    items: Sequence[str] = (),
    user: str | None = None,
    intent: str | None = None,
    min_size: int = 2,
    max_size: int = 4,
    budget: float | None = None,
    one_per_category: bool = True,
    category_mix: dict[str, int] | None = None,
    required_items: Sequence[str] = (),
    excluded_items: Sequence[str] = (),
    required_categories: Sequence[str] = (),
    excluded_categories: Sequence[str] = (),
    in_stock_only: bool = True,
    solver: str | None = None,
    language: str = "en",
) -> dict:
    """A bundle for an item, a cart (several ``items``), a ``user`` id and/or an ``intent`` text.

    Sizes and the budget count the whole bundle, anchors included. Returns ``{"items": [...],
    "total_price", "value", "solver", "optimal", "summary", "notes"}``; each item has its id,
    title, category, price, role (``anchor`` or ``added``) and reason. Raises
    :class:`~shoprec.errors.DataError` for unknown ids and
    :class:`~shoprec.bundles.objective.InfeasibleBundle` naming the constraint that binds.
    """
    anchor = _anchor(rec, items, user, intent)
    constraints = BundleConstraints(
        min_size=min_size,
        max_size=max_size,
        budget=budget,
        one_per_category=one_per_category,
        category_mix=category_mix,
        required_items=_indices(rec, required_items, "required item"),
        excluded_items=_indices(rec, excluded_items, "excluded item"),
        required_categories=tuple(required_categories),
        excluded_categories=tuple(excluded_categories),
        in_stock_only=in_stock_only,
    )
    bundle = rec.recommend(anchor, constraints, solver)
    explained = explain_bundle(rec, bundle, language)
    rows = [_row(rec, row) for row in explained["items"]]
    return {
        "items": rows,
        "total_price": bundle.total_price,
        "value": bundle.solution.value,
        "solver": bundle.solution.solver,
        "optimal": bundle.solution.optimal,
        "summary": explained["summary"],
        "notes": bundle.notes,
    }


def _anchor(rec: BundleRecommender, items: Sequence[str], user: str | None, intent: str | None) -> Anchor:
    if not items and user is None and not intent:
        raise ModelError("a bundle needs an anchor: give items (an item or a cart), a user or an intent")
    anchor = Anchor(items=_indices(rec, items, "anchor item"), intent=intent or None)
    if user is not None:
        index = int(rec.dataset.user_vocab.index(np.array([str(user)], dtype=object))[0])
        if index < 0:
            fix = "Check the id, or anchor on items or an intent"
            raise DataError(f"unknown user '{user}'", column="user_id", fix=fix)
        history = rec.user_anchor(index)
        anchor.context, anchor.exclude = history.context, history.exclude
    return anchor


def _row(rec: BundleRecommender, row: dict) -> dict:
    """One bundle item as the service returns it."""
    i, info = row["item"], rec.info
    price = float(info.price[i])
    return {
        "item_id": str(info.item_id[i]),
        "title": str(info.title[i]),
        "category": str(info.category[i]),
        "price": None if np.isnan(price) else price,
        "role": row["role"],
        "reason": row["reason"]["text"],
        "reason_kind": row["reason"]["kind"],
    }
