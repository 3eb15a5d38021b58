"""Pair mining, contrastive fine-tuning and the ``finetune`` / ``encode`` commands."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from shoprec.cli import text_cmds
from shoprec.data import dataset_from_frames
from shoprec.data.demo import generate_preset
from shoprec.errors import ShoprecError
from shoprec.text.finetune import (
    FinetuneSettings,
    _per_anchor,
    distinct_batches,
    epoch_batches,
    evaluate_pairs,
    finetune,
)
from shoprec.text.pairs import SOURCES, Pairs, basket_pairs, mine_pairs, session_pairs

ITEMS = list("abcdefgh")
TINY = {"max_length": 32, "threads": 1}  # short texts, and one thread is faster on a busy 2-core machine


def shop_with_known_pairs():
    """Baskets O1 {a,b,c}, O2 {a,b,b}, O3 {d}; sessions S1 e,e,f,a and S2 f,e,a,b; user u3 without
    session ids: h (t=1000), g (t=1500), a (t=10000); searches 'Red  Mug'->a, 'red mug'->a, 'blue vase'->c."""
    rows = [
        ("u1", "a", 100, "purchase", "O1"),
        ("u1", "b", 100, "purchase", "O1"),
        ("u1", "c", 100, "purchase", "O1"),
        ("u2", "a", 200, "purchase", "O2"),
        ("u2", "b", 200, "purchase", "O2"),
        ("u2", "b", 201, "purchase", "O2"),
        ("u2", "d", 300, "purchase", "O3"),
        ("u1", "e", 10, "view", "S1"),
        ("u1", "e", 11, "click", "S1"),
        ("u1", "f", 12, "view", "S1"),
        ("u1", "a", 13, "view", "S1"),
        ("u2", "f", 20, "view", "S2"),
        ("u2", "e", 21, "view", "S2"),
        ("u2", "a", 22, "view", "S2"),
        ("u2", "b", 23, "cart", "S2"),
        ("u3", "h", 1000, "purchase", None),
        ("u3", "g", 1500, "purchase", None),
        ("u3", "a", 10000, "purchase", None),
    ]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "session_id"])
    items = pd.DataFrame({"item_id": ITEMS, "title": [f"product {i}" for i in ITEMS]})
    queries = pd.DataFrame({"query": ["Red  Mug", "red mug", "blue vase", "nothing"], "item_id": ["a", "a", "c", None]})
    return dataset_from_frames(items, events, queries=queries, name="known")


def as_item_pairs(first: np.ndarray, second: np.ndarray) -> set[frozenset]:
    return {frozenset((ITEMS[a], ITEMS[b])) for a, b in zip(first.tolist(), second.tolist(), strict=True)}


def mined_by_source(pairs: Pairs) -> dict[str, set]:
    out: dict[str, set] = {name: set() for name in SOURCES}
    for a, q, p, s in zip(pairs.anchor, pairs.query, pairs.positive, pairs.source, strict=True):
        out[SOURCES[s]].add((q, ITEMS[p]) if a < 0 else frozenset((ITEMS[a], ITEMS[p])))
    return out


# ---------------------------------------------------------------------------------------------- pair mining
def test_basket_pairs_are_every_pair_of_distinct_items():
    first, second, too_large = basket_pairs(shop_with_known_pairs())
    assert len(first) == 4  # O1: ab ac bc, O2: ab (b twice counts once), O3 has one item
    assert as_item_pairs(first, second) == {frozenset("ab"), frozenset("ac"), frozenset("bc")}
    assert too_large == 0
    assert basket_pairs(shop_with_known_pairs(), max_basket_size=2)[2] == 1  # O1 is skipped


def test_session_pairs_follow_consecutive_distinct_items():
    dataset = shop_with_known_pairs()
    prev, nxt = session_pairs(dataset)
    got = [(ITEMS[a], ITEMS[b]) for a, b in zip(prev.tolist(), nxt.tolist(), strict=True)]
    assert sorted(got) == sorted([("e", "f"), ("f", "a"), ("f", "e"), ("e", "a"), ("a", "b"), ("h", "g")])
    whole = session_pairs(dataset, session_gap=None)
    assert ("g", "a") in {(ITEMS[a], ITEMS[b]) for a, b in zip(*whole, strict=True)}


def test_mine_pairs_counts_and_dedupes_each_source():
    pairs = mine_pairs(shop_with_known_pairs(), max_pairs=100, held_out=0.2, seed=3)
    assert pairs.counts == {
        "basket": {"mined": 4, "unique": 3, "kept": 3},
        "session": {"mined": 6, "unique": 4, "kept": 4},  # a-b is already a basket pair
        "query": {"mined": 3, "unique": 2, "kept": 2},
    }
    assert mined_by_source(pairs) == {
        "basket": {frozenset("ab"), frozenset("ac"), frozenset("bc")},
        "session": {frozenset("ef"), frozenset("af"), frozenset("ae"), frozenset("gh")},
        "query": {("red mug", "a"), ("blue vase", "c")},
    }
    assert pairs.stats["train"] + pairs.stats["held_out"] == len(pairs) == 9


def test_budget_is_shared_between_sources_and_popular_items_are_capped():
    dataset = shop_with_known_pairs()
    shared = mine_pairs(dataset, max_pairs=6, held_out=0.2)
    # smallest source first: query 2 of 6 // 3 = 2, basket 2 of 4 // 2, session the last 2
    assert shared.by_source() == {"basket": 2, "session": 2, "query": 2}
    capped = mine_pairs(dataset, max_pairs=100, max_per_item=2, held_out=0.2)
    uses = np.bincount(np.r_[capped.anchor[capped.anchor >= 0], capped.positive], minlength=len(ITEMS))
    assert uses.max() <= 2
    assert capped.stats["capped"] > 0


def test_strongest_pairs_are_taken_first():
    pairs = mine_pairs(shop_with_known_pairs(), max_pairs=3, held_out=0.2)
    # a-b is in two orders, e-f in two sessions (both ways), 'red mug' -> a searched twice
    assert mined_by_source(pairs) == {
        "basket": {frozenset("ab")},
        "session": {frozenset("ef")},
        "query": {("red mug", "a")},
    }


def test_held_out_anchors_are_never_seen_in_training():
    dataset = generate_preset("small").to_dataset()
    pairs = mine_pairs(dataset, max_pairs=3000, seed=5)
    train, held = pairs.train(), pairs.holdout()
    held_anchors = set(held.anchor_keys().tolist())
    assert held_anchors.isdisjoint(train.anchor_keys().tolist())
    held_items = {k for k in held_anchors if isinstance(k, int)}
    item_pairs = train.anchor >= 0
    assert held_items.isdisjoint(train.positive[item_pairs].tolist())  # not even as an item positive
    assert 0.05 < len(held) / len(pairs) < 0.2
    again = mine_pairs(dataset, max_pairs=3000, seed=5)
    assert np.array_equal(again.anchor, pairs.anchor) and np.array_equal(again.held_out, pairs.held_out)
    other = mine_pairs(dataset, max_pairs=3000, seed=6)
    assert not np.array_equal(other.positive, pairs.positive)


def test_distinct_batches_keep_every_pair_once_without_repeats():
    rng = np.random.default_rng(0)
    anchors = rng.integers(0, 12, 200).tolist()
    positives = rng.integers(0, 12, 200).tolist()
    keep = [i for i in range(200) if anchors[i] != positives[i]]
    batches = list(distinct_batches(np.array(keep), anchors, positives, size=4))
    assert sorted(i for b in batches for i in b) == keep
    for batch in batches:
        keys = [anchors[i] for i in batch] + [positives[i] for i in batch]
        assert len(keys) == len(set(keys)) and len(batch) <= 4


def test_epoch_batches_group_texts_of_similar_length():
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 300, 3200)
    keys = list(range(3200))
    spread = {}
    for group in (False, True):
        settings = FinetuneSettings(batch_size=32, group_by_length=group)
        batches = epoch_batches(np.random.default_rng(0), lengths, keys, [k + 10_000 for k in keys], settings)
        assert sorted(i for b in batches for i in b) == keys
        spread[group] = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread[True] < 0.1 * spread[False]


# ---------------------------------------------------------------------------------------------- held-out check
def test_per_anchor_metrics_average_over_anchors():
    ranks = np.array([0, 12, 3, 30])  # anchor 0: ranks 0 and 12; anchor 1: ranks 3 and 30
    metrics = _per_anchor(ranks, np.array([0, 0, 1, 1]), k=10)
    assert metrics["recall@10"] == pytest.approx(0.5)
    assert metrics["mrr"] == pytest.approx((1 / 1 + 1 / 4) / 2)


class OneHotModel:
    """Encodes 'product x' as the one-hot of x, 'query x' halfway between x and the next item."""

    def encode(self, texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False):
        out = np.zeros((len(texts), len(ITEMS)), dtype=np.float32)
        for row, text in enumerate(texts):
            kind, item = text.split()
            out[row, ITEMS.index(item)] = 1.0
            if kind == "query":
                out[row, (ITEMS.index(item) + 1) % len(ITEMS)] = 0.9
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_evaluate_pairs_ranks_the_catalogue_without_the_anchor():
    texts = [f"product {i}" for i in ITEMS]
    pairs = Pairs(
        anchor=np.array([0, -1], dtype=np.int32),
        query=np.array(["", "query c"], dtype=object),
        positive=np.array([1, 3], dtype=np.int32),  # a -> b: tied at 0 with all but a; 'query c' -> d: rank 1
        source=np.array([0, 2], dtype=np.int8),
        held_out=np.ones(2, dtype=bool),
    )
    metrics = evaluate_pairs(OneHotModel(), texts, pairs, k=1)
    assert metrics["basket/mrr"] == 1.0  # ties do not count against the positive; a itself is left out
    assert metrics["query/mrr"] == pytest.approx(0.5)
    assert metrics["query/recall@1"] == 0.0
    assert metrics["anchors"] == 2


# ---------------------------------------------------------------------------------------------- fine-tuning
def paired_shop(n_groups: int = 40):
    """Items come in pairs (a mug and its saucer, ...) always bought together, so every basket is a pair."""
    nouns = ["mug", "lamp", "sock", "pen", "bowl", "scarf", "kettle", "candle", "towel", "notebook"]
    colours = ["red", "blue", "green", "black"]
    titles, events = [], []
    for g in range(n_groups):
        noun, colour = nouns[g % len(nouns)], colours[g // len(nouns) % len(colours)]
        titles += [f"{colour} {noun}", f"{colour} {noun} refill pack"]
        for repeat in range(2):
            order = f"O{g}-{repeat}"
            events += [(f"u{g}-{repeat}", f"i{2 * g + k}", 100 * g + repeat, "purchase", order) for k in range(2)]
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(len(titles))], "title": titles})
    frame = pd.DataFrame(events, columns=["user_id", "item_id", "timestamp", "event", "session_id"])
    return dataset_from_frames(items, frame, name="paired")


TUNING = FinetuneSettings(max_pairs=64, batch_size=16, held_out=0.2, learning_rate=1e-4, **TINY)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One tiny fine-tuning run (40 pairs, 8 of them held out, batch 16), shared by the tests below."""
    from shoprec.text import load_encoder

    dataset = paired_shop()
    out = tmp_path_factory.mktemp("tuned") / "model"
    result = finetune(dataset, out, settings=TUNING, progress=False)
    return dataset, result, load_encoder(str(out))


def held_out_ranks(encoder, texts: list[str], anchors: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Brute force: for each held-out pair, how many catalogue items (the anchor left out) the
    encoder puts strictly closer to the anchor than its partner (0 = the partner comes first)."""
    vectors = encoder.encode(texts)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.arange(len(anchors))
    cosine = vectors[anchors] @ vectors.T  # (pairs, items)
    cosine[rows, anchors] = -np.inf
    return (cosine > cosine[rows, positives][:, None]).sum(axis=1)


def test_tuned_encoder_finds_held_out_partners_the_base_encoder_misses(tuned):
    """Same task for both encoders, scored here rather than by the fine-tuning code: the pairs the
    run held out (a title and its refill pack, never seen in training) ranked over the catalogue."""
    from shoprec.text import load_encoder
    from shoprec.text.itemtext import item_texts

    dataset, result, encoder = tuned
    kept = {name: getattr(TUNING, name) for name in ("max_pairs", "seed", "held_out", "max_per_item", "min_count")}
    held = mine_pairs(dataset, session_gap=TUNING.session_gap, **kept).holdout()
    assert len(held.anchor) == result.pair_stats["held_out"] == 8
    texts = item_texts(dataset).texts
    before = held_out_ranks(load_encoder("minilm"), texts, held.anchor, held.positive)
    after = held_out_ranks(encoder, texts, held.anchor, held.positive)
    mrr_before, mrr_after = np.mean(1 / (before + 1)), np.mean(1 / (after + 1))
    assert mrr_after > mrr_before + 0.3  # measured: 0.19 -> 1.0
    assert (after == 0).sum() >= 6 > (before == 0).sum()  # partner ranked first for most pairs, not before
    assert (after <= before).all()
    assert result.before["mrr"] == pytest.approx(mrr_before, abs=0.02)  # the run's own record agrees
    assert result.after["mrr"] == pytest.approx(mrr_after, abs=0.02)


def test_finetune_writes_a_loadable_model_that_changed(tuned):
    from shoprec.text import load_encoder
    from shoprec.text.itemtext import item_texts

    dataset, result, encoder = tuned
    texts = item_texts(dataset).texts
    base = load_encoder("minilm")
    assert encoder.dim == base.dim == 384
    changed = np.abs(encoder.encode(texts[:8]) - base.encode(texts[:8])).max()
    assert changed > 1e-3
    record = json.loads((result.out_dir / "finetune.json").read_text())
    assert record["pairs"]["basket"]["kept"] == 40 and record["steps"] == result.steps >= 2
    assert record["settings"]["batch_size"] == 16 and record["base"] == "minilm"
    assert set(record["before"]) >= {"recall@10", "mrr", "basket/mrr"}
    assert record["after"]["mrr"] > record["before"]["mrr"]  # held-out items learn "X" ~ "X refill pack"
    assert record["seconds"]["total"] > 0


def test_finetune_refuses_unusable_bases_and_folders(tmp_path, tuned):
    dataset = tuned[0]
    with pytest.raises(ShoprecError, match="cannot be fine-tuned"):
        finetune(dataset, tmp_path / "m", base="minilm-int8")
    with pytest.raises(ShoprecError, match="not a sentence-transformers model folder"):
        finetune(dataset, tmp_path / "m", base=str(tmp_path))
    with pytest.raises(ShoprecError, match="batch_size must be at least 2"):  # arguments override settings
        finetune(dataset, tmp_path / "m", settings=FinetuneSettings(batch_size=16), batch_size=1)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(ShoprecError, match="not empty"):
        finetune(dataset, tmp_path / "busy")


def test_finetune_without_pairs_names_the_empty_sources(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["a", "b"]})
    events = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "b"], "timestamp": [0, 5]})
    lonely = dataset_from_frames(items, events)
    with pytest.raises(ShoprecError, match=r"basket: 0, session: 0, query: 0") as err:
        finetune(lonely, tmp_path / "m")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- commands
def run_command(argv: list[str]) -> int:
    """Parse and run one of this module's commands the way ``shoprec`` does."""
    parser = argparse.ArgumentParser(prog="shoprec")
    text_cmds.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


@pytest.fixture(scope="module")
def shop_folder(tmp_path_factory):
    """The paired shop saved as a dataset folder (80 items with short titles)."""
    return paired_shop().save(tmp_path_factory.mktemp("shop") / "paired")


def test_encode_command_writes_vectors_and_reuses_the_cache(tmp_path, shop_folder, capsys):
    out = tmp_path / "vectors.npy"
    argv = ["encode", str(shop_folder), "--encoder", "minilm-int8", "--cache", str(tmp_path / "c"), "--out", str(out)]
    assert run_command(argv) == 0
    vectors = np.load(out)
    ids = (tmp_path / "vectors.ids.txt").read_text().split()
    assert vectors.shape == (80, 384) and ids[:3] == ["i0", "i1", "i2"] and len(ids) == 80
    assert run_command(argv) == 0
    assert "80 from the cache, 0 encoded" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(out), vectors)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["encode", "{shop}", "--encoder", "nope"], "unknown encoder 'nope'"),
        (["encode", "{shop}", "--out", "vectors.csv"], "must end in .npy"),
        (["finetune", "{shop}", "--base", "no/such/model"], "no such folder"),
        (["finetune", "{shop}", "--base", "use-multilingual"], "cannot be fine-tuned"),
        (["finetune", "{shop}", "--batch-size", "1"], "batch_size must be at least 2"),
    ],
)
def test_command_errors_are_one_clear_line(argv, message, shop_folder, tmp_path):
    argv = [a.replace("{shop}", str(shop_folder)) for a in argv] + (
        ["--out", str(tmp_path / "o")] * (argv[0] == "finetune")
    )
    with pytest.raises(ShoprecError, match=message) as err:
        run_command(argv)
    assert "\n" not in str(err.value)


def test_finetune_command_prints_pairs_metrics_and_model(shop_folder, tmp_path, capsys):
    out = tmp_path / "model"
    argv = ["finetune", str(shop_folder), "--out", str(out), "--max-pairs", "64", "--batch-size", "16"]
    assert run_command([*argv, "--max-length", "32", "--threads", "1", "--held-out", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "basket" in printed and "recall@10" in printed and f"model written to {out}" in printed
    assert json.loads((out / "finetune.json").read_text())["pairs"]["basket"]["kept"] == 40


@pytest.mark.benchmark
def test_finetune_command_on_the_demo_shop(tmp_path, capsys):
    shop = generate_preset("small").write(tmp_path / "small")
    out = tmp_path / "model"
    argv = ["finetune", str(shop), "--out", str(out), "--max-pairs", "300", "--max-length", "64", "--threads", "1"]
    assert run_command(argv) == 0
    record = json.loads((out / "finetune.json").read_text())
    assert all(record["pairs"][source]["kept"] > 0 for source in SOURCES)
    assert record["after"]["recall@10"] > record["before"]["recall@10"]  # the same held-out pairs, base vs tuned
    assert record["after"]["mrr"] > record["before"]["mrr"]
