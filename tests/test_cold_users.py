"""A user whose events all fall outside the training data is served by the explicit fallback."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.models import create_model

MODELS = ["popularity", "itemknn", "als", "ease"]


@pytest.mark.parametrize("name", MODELS)
def test_user_without_training_events_gets_popularity_not_arbitrary_items(name, checkerboard):
    user = int(checkerboard.user_vocab.index(["u3"])[0])
    train = checkerboard.subset(checkerboard.interactions["user"].to_numpy() != user)
    model = create_model(name).fit(train)
    assert train.n_users == checkerboard.n_users  # the user keeps an index but has no events
    assert not model.is_known([user])[0]
    items, scores = model.recommend([user], k=4)
    popularity = np.asarray(train.matrix().sum(axis=0)).ravel()
    np.testing.assert_array_equal(scores[0], np.sort(popularity)[::-1][:4])
    assert np.isfinite(scores).all()
