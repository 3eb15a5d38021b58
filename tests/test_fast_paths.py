"""The request path's vectorised code gives exactly what the plain code it replaced gave.

Each reference below is the former implementation, kept here as the specification."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.pipeline.candidates import Candidates


def merge_reference(proposals: dict[str, tuple[np.ndarray, np.ndarray]]) -> Candidates:
    """Candidates.merge as a loop over items: first appearance over sources in order."""
    sources = tuple(proposals)
    order: dict[int, int] = {}
    for items, _ in proposals.values():
        for item in np.asarray(items).ravel().tolist():
            if item >= 0 and item not in order:
                order[item] = len(order)
    n = len(order)
    scores = np.full((n, len(sources)), np.nan, dtype=np.float32)
    ranks = np.full((n, len(sources)), -1, dtype=np.int32)
    for s, (items, values) in enumerate(proposals.values()):
        items = np.asarray(items).ravel()
        values = np.asarray(values, dtype=np.float32).ravel()
        keep = items >= 0
        rows = np.array([order[i] for i in items[keep].tolist()], dtype=np.int64)
        scores[rows, s] = values[keep]
        ranks[rows, s] = np.arange(len(items), dtype=np.int32)[keep]
    items = np.fromiter(order, dtype=np.int64, count=n)
    return Candidates(items, sources, scores, ranks, np.zeros(n, dtype=np.float32))


@pytest.mark.parametrize("seed", range(20))
def test_merge_matches_the_item_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    proposals = {}
    for name in ("ease", "also-viewed", "trending", "empty")[: rng.integers(1, 5)]:
        n = 0 if name == "empty" else int(rng.integers(0, 60))
        items = rng.choice(80, size=n, replace=False).astype(np.int64)
        items[rng.random(n) < 0.1] = -1  # padding inside a list is skipped
        proposals[name] = (items, rng.normal(size=n).astype(np.float32))
    got, want = Candidates.merge(proposals), merge_reference(proposals)
    assert got.sources == want.sources
    np.testing.assert_array_equal(got.items, want.items)
    np.testing.assert_array_equal(got.source_scores, want.source_scores)
    np.testing.assert_array_equal(got.source_ranks, want.source_ranks)
    assert got.items.dtype == np.int64 and got.source_ranks.dtype == np.int32


def test_merge_of_nothing() -> None:
    got = Candidates.merge({"a": (np.empty(0, np.int64), np.empty(0, np.float32))})
    assert len(got) == 0 and got.source_scores.shape == (0, 1)


# ---------------------------------------------------------------------- the pipeline's hot path
@pytest.fixture(scope="module")
def fitted():
    """A small pipeline with a learned ranker (EASE, item-to-item, trending), and test contexts."""
    from shoprec.data.demo import generate_preset
    from shoprec.eval import leave_last_out
    from shoprec.models import create_model
    from shoprec.pipeline.context import contexts_from_dataset
    from shoprec.pipeline.pipeline import Pipeline
    from shoprec.pipeline.sources import ItemToItemSource, ModelSource, PopularitySource

    dataset = generate_preset("small", seed=3).to_dataset()
    sources = [
        ModelSource("ease", create_model("ease", reg=50.0)),
        ItemToItemSource("i2i"),
        PopularitySource("trending", window_days=7),
    ]
    valid = leave_last_out(dataset, stage="valid")
    pipe = Pipeline(sources, recall_k=30).fit(valid.train)
    pipe.fit_ranker(contexts_from_dataset(valid.train, valid.users), valid.truth)
    test = leave_last_out(dataset, stage="test")
    pipe.fit(test.train)
    return pipe, contexts_from_dataset(test.train, test.users[:40])


def contributions_reference(pipe, X: np.ndarray) -> np.ndarray:
    """Occlusion shares predicting every variant of every row, the original scores included."""
    n, m = len(X), len(pipe.sources)
    count = 2 * m
    variants = [X]
    for j in range(m):
        without = X.copy()
        proposed = ~np.isnan(without[:, 2 * j + 1])
        without[:, 2 * j : 2 * j + 2] = np.nan
        without[proposed, count] -= 1
        variants.append(without)
    pred = pipe.ranker.predict(np.vstack(variants)).reshape(m + 1, n)
    fall = np.maximum(pred[0] - pred[1:], 0.0).T
    total = fall.sum(axis=1, keepdims=True)
    return np.divide(fall, total, out=np.zeros_like(fall), where=total > 0)


def test_source_shares_skip_only_rows_that_cannot_change(fitted) -> None:
    from collections import defaultdict

    pipe, contexts = fitted
    cands = pipe.candidates(contexts)
    rows = pipe.score(contexts, cands, "learned", defaultdict(float))
    lifted = 0
    for cand, X in zip(cands, rows, strict=True):
        want = contributions_reference(pipe, X)
        np.testing.assert_array_equal(pipe._source_contributions(X, cand.score), want)
        np.testing.assert_array_equal(pipe._source_contributions(X), want)
        lifted += int((want > 0).sum())
    assert lifted > 100  # the shares are not all zero: the comparison sees real falls


# ---------------------------------------------------------------------- the compiled trees
def test_compiled_trees_predict_what_lightgbm_predicts(fitted) -> None:
    """The ranker's compiled trees against LightGBM's predict on real feature rows (missing values
    included) and on random ones, to 1e-9 (raw scores: to the last bit)."""
    from collections import defaultdict

    pipe, contexts = fitted
    ranker = pipe.ranker
    assert ranker.compiled is not None, ranker.compiled_note
    cands = pipe.candidates(contexts)
    X = np.vstack(pipe.score(contexts, cands, "learned", defaultdict(float)))
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=3.0, size=(2000, X.shape[1])).astype(np.float32)
    noise[rng.random(noise.shape) < 0.3] = np.nan
    noise[rng.random(noise.shape) < 0.05] = 0.0
    booster, best = ranker.booster, ranker.booster.best_iteration
    for rows in (X, noise):
        assert np.isnan(rows).any()
        want = booster.predict(rows, num_iteration=best, num_threads=1)
        np.testing.assert_allclose(ranker.compiled.predict(rows), want, rtol=0, atol=1e-9)
        raw = booster.predict(rows, num_iteration=best, raw_score=True, num_threads=1)
        np.testing.assert_array_equal(ranker.compiled.raw(rows), raw)
        np.testing.assert_allclose(ranker.predict(rows), want.astype(np.float32), rtol=0, atol=1e-7)
    assert len(np.unique(want)) > 100  # the trees split the rows: the comparison is not on constants


def test_model_text_round_trip_compiles_the_same_trees(fitted) -> None:
    from shoprec.pipeline.ranking import LearnedRanker

    pipe, _ = fitted
    loaded = LearnedRanker.from_string(pipe.ranker.to_string(), pipe.ranker.config, pipe.ranker.feature_names)
    rows = np.random.default_rng(1).normal(size=(500, len(pipe.ranker.feature_names))).astype(np.float32)
    np.testing.assert_array_equal(loaded.compiled.raw(rows), pipe.ranker.compiled.raw(rows))
    np.testing.assert_array_equal(loaded.predict(rows), pipe.ranker.predict(rows))


def test_unsupported_models_keep_lightgbm() -> None:
    from shoprec.pipeline.trees import compile_trees

    trees, reason = compile_trees("tree\nversion=v4\nobjective=regression\n\nend of trees\n")
    assert trees is None and "regression" in reason


# ---------------------------------------------------------------------- recall sources
def dense_recall_reference(source, contexts, k: int, rows: np.ndarray):
    """A source's recall as it was: the whole catalogue row, non-positive scores and (when the
    source hides them) the user's items at -inf, then top_k."""
    from shoprec.pipeline.sources import _mask_history, _rows_top_k

    rows = np.asarray(rows, dtype=np.float32).copy()
    rows[rows <= 0] = -np.inf
    if source.exclude_seen:
        _mask_history(rows, contexts)
    return _rows_top_k(rows, k)


def assert_same_lists(got, want) -> None:
    assert len(got) == len(want)
    for (items, scores), (items_ref, scores_ref) in zip(got, want, strict=True):
        np.testing.assert_array_equal(items, items_ref)
        np.testing.assert_array_equal(scores, scores_ref)
        assert items.dtype == np.int64 and scores.dtype == np.float32


@pytest.mark.parametrize("k", [5, 30, 400])
def test_item_to_item_recall_matches_the_dense_row(fitted, k: int) -> None:
    pipe, contexts = fitted
    source = pipe.source("i2i")
    rows = source.history_scores([c.history for c in contexts])
    for ctx, row in zip(contexts, rows, strict=True):
        items, scores = source.touched_scores(ctx.history)
        np.testing.assert_array_equal(row[items], scores)  # the sums, to the bit
        assert not np.delete(row, items).any()  # and nothing outside the touched items
    assert_same_lists(source.recall(contexts, k), dense_recall_reference(source, contexts, k, rows))


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_trending_recall_matches_the_dense_row(fitted, exclude_seen: bool) -> None:
    import dataclasses

    pipe, contexts = fitted
    source = pipe.source("trending")
    source.exclude_seen = exclude_seen
    try:
        later = [dataclasses.replace(c, now=c.now + 86_400 * d) for d in (0, 3) for c in contexts]
        for k in (3, 30, 500):
            rows = np.stack([source.counts(c.now) for c in later])
            assert_same_lists(source.recall(later, k), dense_recall_reference(source, later, k, rows))
    finally:
        source.exclude_seen = True


# ---------------------------------------------------------------------- the service's proposal
def proposal_reference(item_ids: np.ndarray, rec, scenario: str) -> tuple:
    """The service's proposal as it was built, item by item."""
    ids = item_ids[rec.items].tolist()
    names, shares = [], []
    for r in range(len(ids)):
        row = rec.source_shares[r] if scenario == "home" and rec.source_shares.size else None
        if row is not None and row.max() > 0:
            names.append(rec.candidates.sources[int(np.argmax(row))])
            shares.append({n: round(float(v), 4) for n, v in zip(rec.candidates.sources, row, strict=True) if v > 0})
        else:
            proposed = (rec.candidates.source_ranks[r] >= 0).any()
            names.append(scenario if proposed and scenario != "home" else "fallback")
            shares.append({})
    return ids, rec.scores.astype(float).tolist(), names, shares, list(rec.notes)


@pytest.mark.parametrize("scenario", ["home", "trending"])
def test_packed_proposal_is_the_item_by_item_one(fitted, scenario: str) -> None:
    from shoprec.service.feedcache import Packed

    pipe, contexts = fitted
    item_ids = pipe.resources.info.item_id
    recs = pipe.recommend(contexts, k=50)
    recs[0].source_shares[:3] = 0  # items no source lifts: named by the scenario or "fallback"
    for rec in recs:
        got = Packed.of(rec, scenario).unpack(item_ids)
        want = proposal_reference(item_ids, rec, scenario)
        assert (got.items, got.scores, got.sources, got.shares, got.notes) == want
        assert list(map(list, (d.keys() for d in got.shares))) == list(map(list, (d.keys() for d in want[3])))
    assert any(s for rec in recs for s in proposal_reference(item_ids, rec, scenario)[3]) == (scenario == "home")


@pytest.mark.parametrize("length", [0, 1, 5, 64, 65, 300])
def test_seen_is_isin(length: int) -> None:
    from shoprec.pipeline.context import UserContext

    rng = np.random.default_rng(length)
    history = rng.integers(0, 50, length)
    ctx = UserContext(0, history, np.arange(length), 100)
    for items in (rng.integers(0, 60, 200), np.empty(0, np.int64), np.array([history[0] if length else 3])):
        np.testing.assert_array_equal(ctx.seen(items), np.isin(items, history))


def test_rerank_finds_each_shown_items_candidate_row(fitted) -> None:
    from collections import defaultdict

    pipe, contexts = fitted
    cands = pipe.candidates(contexts)
    pipe.score(contexts, cands, "learned", defaultdict(float))
    filled = 0
    for ctx, cand in zip(contexts, cands, strict=True):
        for k in (10, 60):
            final, shown = pipe._rerank(ctx, cand, k)
            row_of = {item: r for r, item in enumerate(cand.items.tolist())}
            np.testing.assert_array_equal(shown, [row_of.get(i, -1) for i in final.items.tolist()])
            filled += int((shown < 0).sum())
    assert filled > 0  # lists filled past the candidates: rows of -1 are checked too


def test_ease_scores_one_user_as_a_batch_does(fitted) -> None:
    pipe, contexts = fitted
    ease = pipe.source("ease").model
    users = np.array([c.user for c in contexts[:10]])
    batch = ease.score(users)
    for row, user in zip(batch, users, strict=True):
        np.testing.assert_array_equal(ease.score(np.array([user]))[0], row)


@pytest.mark.parametrize("seed", range(30))
def test_one_row_top_k_is_top_k(seed: int) -> None:
    from shoprec.pipeline.sources import _row_top_k
    from shoprec.ranks import top_k

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    row = rng.integers(0, 6, n).astype(np.float32) if seed % 2 else rng.normal(size=n).astype(np.float32)
    for value in (np.nan, -np.inf, np.inf):
        row[rng.random(n) < 0.1] = value
    for k in (1, 5, max(n // 2, 1), n, n + 3):
        items, scores = top_k(row[None, :], k)
        keep = items[0] >= 0
        got = _row_top_k(row, k)
        np.testing.assert_array_equal(got[0], items[0][keep])
        np.testing.assert_array_equal(got[1], scores[0][keep])
        assert got[0].dtype == np.int64 and got[1].dtype == np.float32


def test_model_source_reuses_a_users_list_only_when_exact(fitted) -> None:
    """A fitted-row source (EASE) keeps each user's list a little longer than asked; later requests
    with more history (live clicks, also on listed items) or less (an item left the live window)
    get exactly what scoring the row again gives."""
    import dataclasses

    pipe, contexts = fitted
    source = pipe.source("ease")
    source._lists = {}
    first = source.recall(contexts, 30)
    rng = np.random.default_rng(0)
    later = []
    for ctx, (items, _) in zip(contexts, first, strict=True):
        clicks = items[rng.integers(0, max(len(items), 1), 3)] if len(items) else np.empty(0, np.int64)
        grown = np.concatenate([ctx.history, clicks, rng.integers(0, 200, 2)])
        later.append(dataclasses.replace(ctx, history=grown, times=np.arange(len(grown))))
        many = np.concatenate([ctx.history, items[:25]])  # more newly hidden items than the list kept extra
        later.append(dataclasses.replace(ctx, history=many, times=np.arange(len(many))))
        later.append(dataclasses.replace(ctx, history=ctx.history[1:], times=ctx.times[1:]))  # one left
    scored = []
    score = source.model.score
    source.model.score = lambda users: scored.extend(users) or score(users)
    try:
        got = source.recall(later, 30)
    finally:
        source.model.score = score
    known = sum(c.user >= 0 for c in contexts)
    assert 0 < len(scored) < 3 * known  # some answered from the kept lists, some scored again
    assert len(source._lists) == len(contexts)  # the first requests' lists were kept (and refreshed)
    source._lists = {}
    assert_same_lists(got, source.recall(later, 30))
    source._lists = {}
    assert_same_lists(first, source.recall(contexts, 30))
