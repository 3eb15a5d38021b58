"""Property tests for vocabularies and the dataset's derived views."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprec.data import Vocabulary, dataset_from_frames

ids = st.lists(st.text(min_size=1, max_size=6).filter(lambda s: s.strip() == s), min_size=1, max_size=40, unique=True)


@given(ids)
def test_vocabulary_round_trip(values):
    vocab = Vocabulary(values)
    positions = vocab.index(values)
    assert positions.tolist() == list(range(len(values)))
    assert vocab.ids(positions).tolist() == values


@given(ids, st.lists(st.text(min_size=1, max_size=6), max_size=10))
def test_vocabulary_extend_keeps_positions(values, more):
    vocab = Vocabulary(values)
    bigger = vocab.extend(more)
    assert bigger.index(values).tolist() == list(range(len(values)))
    assert all(m in bigger for m in more)
    assert (vocab.index([m for m in more if m not in set(values)]) == -1).all()


events = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9), st.integers(0, 50)), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(events)
def test_sequences_matrix_and_interactions_agree(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).astype({"user_id": str, "item_id": str})
    ds = dataset_from_frames(pd.DataFrame({"item_id": [str(i) for i in range(10)]}), frame)
    seq = ds.sequences()
    assert seq.indptr[-1] == len(rows) == len(ds)
    for u in range(ds.n_users):
        times = seq.timestamps[seq.indptr[u] : seq.indptr[u + 1]]
        assert (np.diff(times) >= 0).all()
        assert set(seq.of(u)) == set(ds.matrix()[u].indices)
    counts = ds.matrix("count")
    assert counts.sum() == len(rows)
