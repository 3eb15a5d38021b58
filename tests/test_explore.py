"""Exploration policy: exact propensities against empirical frequencies, support, edge cases, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from shoprec.loop.explore import Explorer


def _frequencies(explorer: Explorer, m: int, k: int, draws: int, seed: int = 0) -> np.ndarray:
    ranks, _ = explorer.draw(m, k, np.random.default_rng(seed), size=draws)
    return np.stack([np.bincount(ranks[:, j], minlength=m) for j in range(ranks.shape[1])], axis=1) / draws


@pytest.mark.parametrize(("share", "m", "k"), [(0.05, 50, 10), (0.2, 15, 10), (0.5, 12, 10), (0.3, 6, 10)])
def test_propensities_match_empirical_frequencies(share, m, k):
    explorer = Explorer(share=share, pool=max(m - k, 1))
    exact = explorer.marginals(m, k)
    draws = 200_000
    empirical = _frequencies(explorer, m, k, draws)
    assert exact.shape == (m, min(k, m))
    assert np.allclose(exact.sum(axis=0), 1.0)
    assert (exact.sum(axis=1) <= 1 + 1e-9).all()  # an item is shown at most once per list
    se = np.sqrt(exact * (1 - exact) / draws) + 1e-12
    assert np.abs(empirical - exact).max() < 5 * se.max()
    # relative accuracy where it matters for inverse weights: the rare (rank, slot) pairs
    rare = exact < 0.02
    if rare.any():
        counts = empirical[rare] * draws
        assert np.abs(counts - exact[rare] * draws).max() < 5 * np.sqrt(exact[rare] * draws).max() + 3


def test_every_candidate_has_support_at_every_slot():
    explorer = Explorer(share=0.05, pool=40)
    p = explorer.marginals(50, 10)
    assert p.min() >= 0.05 / 50 - 1e-12
    assert p[0, 0] > 0.9  # the best item stays first most of the time


def test_lists_are_distinct_and_propensities_are_the_marginals():
    explorer = Explorer(share=0.3, pool=10)
    rng = np.random.default_rng(3)
    items = [f"i{n}" for n in range(30)]
    m = explorer.candidates(len(items), 8)
    p = explorer.marginals(m, 8)
    assert m == 18
    for _ in range(200):
        ranks, props, explored = explorer.choose(len(items), 8, rng)
        assert len(set(ranks)) == 8 and max(ranks) < m
        assert props == pytest.approx([p[r, j] for j, r in enumerate(ranks)])
        ordinary = [r for r, e in zip(ranks, explored, strict=True) if not e]
        assert ordinary == sorted(ordinary)  # ordinary slots keep the ranking's order
    shown, sources, props, explored = explorer.apply(items, np.linspace(1, 0, 30), ["s"] * 30, 8, rng)
    assert len(shown) == len(sources) == len(props) == len(explored) == 8


def test_share_zero_is_the_ranking():
    shown, _, props, explored = Explorer(share=0.0).apply(list("abcdefgh"), [1.0] * 8, ["s"] * 8, 5)
    assert shown == list("abcde") and props == [1.0] * 5 and explored == [False] * 5


def test_fewer_candidates_than_slots():
    explorer = Explorer(share=0.5, pool=40)
    shown, _, props, _ = explorer.apply(list("abc"), [3.0, 2.0, 1.0], ["s"] * 3, 10, np.random.default_rng(0))
    assert sorted(shown) == list("abc") and all(0 < q <= 1 for q in props)
    assert explorer.apply([], [], [], 10) == ([], [], [], [])


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="share"):
        Explorer(share=1.0)
    with pytest.raises(ValueError, match="pool"):
        Explorer(share=0.1, pool=0)
    with pytest.raises(ValueError, match="length"):
        Explorer(share=0.1).apply(["a", "b"], [1.0], ["s", "s"], 2)


def test_target_probabilities():
    explorer = Explorer(share=0.1, pool=5)
    ranking = list("abcdefghijklmno")
    p = explorer.marginals(explorer.candidates(len(ranking), 3), 3)  # the target's list has 3 slots
    got = explorer.target_probabilities(ranking, ["b", "a", "z"])
    assert got[0] == pytest.approx(p[1, 0]) and got[1] == pytest.approx(p[0, 1]) and got[2] == 0.0
    deterministic = Explorer(share=0.0).target_probabilities(ranking, ["a", "c"])
    assert deterministic.tolist() == [1.0, 0.0]


def test_one_list_costs_well_under_a_millisecond():
    explorer = Explorer(share=0.05, pool=40)
    rng = np.random.default_rng(0)
    explorer.choose(50, 10, rng)  # the marginals are cached per (share, M, k)
    began = time.perf_counter()
    for _ in range(500):
        explorer.choose(50, 10, rng)
    assert (time.perf_counter() - began) / 500 < 0.003
