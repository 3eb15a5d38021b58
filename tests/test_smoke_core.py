"""The orderings the checkerboard pins down: popularity by number of buyers, whatever the group;
collaborative models the user's own group first, the other group only after it."""

import numpy as np
import pytest

from shoprec.models import create_model


def group_of(dataset, items: np.ndarray) -> np.ndarray:
    return np.array([name[0] for name in dataset.item_vocab.ids(items)])


def test_checkerboard_popularity_ranks_unseen_items_by_buyers_whatever_the_group(checkerboard):
    # Counted by hand from the fixture: a_i is missed by users u_j with j % 5 == i, so a0, a1, a2
    # have 6 buyers and a3, a4 have 7 (the same for b). u0 lacks a0 and every b: its top 3 are
    # b3 and b4 (7 buyers each), then one of the items with 6.
    buyers = {f"{g}{i}": 6 if i < 3 else 7 for g in "ab" for i in range(5)}
    model = create_model("popularity").fit(checkerboard)
    items, _ = model.recommend(np.arange(checkerboard.n_users), k=3)
    seen = checkerboard.matrix()
    for u in range(checkerboard.n_users):
        counts = [buyers[i] for i in checkerboard.item_vocab.ids(items[u])]
        unseen = set(range(checkerboard.n_items)) - set(seen[u].indices)
        left_out = [buyers[i] for i in checkerboard.item_vocab.ids(np.array(sorted(unseen - set(items[u]))))]
        assert counts == sorted(counts, reverse=True) and min(counts) >= max(left_out), u
        assert not set(items[u]) & set(seen[u].indices)
    u0 = checkerboard.user_vocab.index(np.array(["u0"], dtype=object))[0]
    assert set(checkerboard.item_vocab.ids(items[u0, :2])) == {"b3", "b4"}


@pytest.mark.parametrize("name", ["itemknn", "ease"])
def test_checkerboard_collaborative_models_fill_from_the_other_group_only_after_own(name, checkerboard):
    # Each user has exactly one unseen item of their own group; it must come first, and only then
    # the other group's five items (which share no buyer with the user's history).
    model = create_model(name).fit(checkerboard)
    items, scores = model.recommend(np.arange(checkerboard.n_users), k=6)
    for u, user in enumerate(checkerboard.user_vocab.ids(np.arange(checkerboard.n_users))):
        own, other = ("a", "b") if user.startswith("u") else ("b", "a")
        assert list(group_of(checkerboard, items[u])) == [own] + [other] * 5, user
        assert scores[u, 0] > scores[u, 1], user
