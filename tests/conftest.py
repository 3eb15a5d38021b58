"""Shared fixtures: one seeded generator, tiny datasets with known answers, the shared data path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from shoprec.data import Dataset
from tinydata import make_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public benchmark files beside the repo; tests that need them skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA} (set SHOPREC_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def multilingual_encoder():
    """The multilingual USE encoder, loaded once per test session (about 7 s on two busy cores)."""
    from shoprec.text.encoders import load_encoder

    return load_encoder("use-multilingual")


@pytest.fixture
def checkerboard() -> Dataset:
    """Two groups of users over two groups of items; every user misses exactly one item of their
    group, which a collaborative model must therefore rank first.

    Users u0..u7 like items a0..a4, users v0..v7 like items b0..b4. User ``u{j}`` lacks ``a{j % 5}``.
    Each user meets their items in a different order (rotated, every other one reversed), so that
    next-item models too see every item both as an input and as a target.
    """
    events = []
    t = 0
    for group, item_prefix in (("u", "a"), ("v", "b")):
        for j in range(8):
            own = [i for i in range(5) if i != j % 5]
            own = own[j % 4 :] + own[: j % 4]
            for i in own[::-1] if j % 2 else own:
                events.append((f"{group}{j}", f"{item_prefix}{i}", t))
                t += 1
    items = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
    return make_dataset(events, items)
