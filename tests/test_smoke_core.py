import numpy as np

from shoprec.models import create_model


def test_checkerboard_popularity_fills_from_the_other_group_only_after_own(checkerboard):
    model = create_model("popularity").fit(checkerboard)
    items, scores = model.recommend(np.arange(checkerboard.n_users), k=3)
    assert items.shape == (checkerboard.n_users, 3)
    seen = checkerboard.matrix()
    for u in range(checkerboard.n_users):
        assert not set(items[u]) & set(seen[u].indices)
