"""Cross-lingual retrieval: a Chinese product title finds its English twin with the multilingual
encoder, and the English-only MiniLM (the control) mostly does not."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.text.encoders import Encoder, load_encoder

TWINS = [
    ("ceramic coffee mug, dishwasher safe", "陶瓷咖啡杯 可用洗碗机"),
    ("wireless noise cancelling headphones", "无线降噪耳机"),
    ("lightweight trail running shoes", "轻量越野跑鞋"),
    ("organic tomato seeds, easy to grow", "有机番茄种子 易种植"),
    ("wooden jigsaw puzzle with a landscape motif", "木质风景图案拼图"),
    ("moisturising face cream for dry skin", "保湿面霜 干性肌肤适用"),
    ("silk summer dress with floral print", "真丝夏季连衣裙 碎花印花"),
    ("waterproof family camping tent", "防水家庭露营帐篷"),
]
"""(English, Chinese) listings of the same product, each pair a different kind of product. No brand
names or numbers: those are written alike in both languages and let even an English-only model
match a pair (the demo-shop benchmark shows how much)."""


def twin_ranks(queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of target ``i`` among all targets for query ``i`` (unit vectors; ties count against)."""
    sims = queries @ targets.T  # (n, n)
    own = np.diag(sims)[:, None]
    return (sims >= own).sum(axis=1) - 1


@pytest.fixture(scope="module")
def use(multilingual_encoder) -> Encoder:
    return multilingual_encoder


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    return load_encoder("minilm-int8")


def _ranks(encoder: Encoder) -> tuple[np.ndarray, np.ndarray]:
    en = encoder.encode([e for e, _ in TWINS])
    zh = encoder.encode([z for _, z in TWINS])
    return twin_ranks(zh, en), twin_ranks(en, zh)


def test_twin_ranks_counts_better_and_tied_targets():
    vectors = np.eye(3, dtype=np.float32)
    assert twin_ranks(vectors, vectors).tolist() == [0, 0, 0]
    targets = np.array([[0.6, 0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    assert twin_ranks(vectors, targets).tolist() == [1, 1, 0]  # each of the first two prefers the other's twin
    assert twin_ranks(vectors[[0, 0]], vectors[[0, 0]]).tolist() == [1, 1]  # a tie is not a win


def test_multilingual_encoder_finds_chinese_twins_at_rank_one(use):
    zh_to_en, en_to_zh = _ranks(use)
    assert (zh_to_en == 0).sum() >= 7, zh_to_en
    assert (en_to_zh == 0).sum() >= 7, en_to_zh


def test_english_only_minilm_is_clearly_worse_across_languages(use, minilm):
    use_zh, use_en = _ranks(use)
    mini_zh, mini_en = _ranks(minilm)
    assert (use_zh == 0).sum() >= (mini_zh == 0).sum() + 3
    assert use_zh.mean() + use_en.mean() < 0.5 * (mini_zh.mean() + mini_en.mean())
