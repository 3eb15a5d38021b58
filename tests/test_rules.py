"""Business rules and rerankers: hand-checked cases, config errors, and hypothesis properties.

The properties run the rules against a small random catalogue and compare with a plain-Python
reference written from the rule descriptions, not from the implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shoprec.errors import ConfigError, ModelError
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext, contexts_from_dataset
from shoprec.pipeline.diversity import head_mask, intra_list_distance, mmr
from shoprec.pipeline.filters import category_mask, word_mask
from shoprec.pipeline.rules import Rules, RulesConfig

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_info(categories, titles=None, brands=None, prices=None, in_stock=None) -> ItemInfo:
    n = len(categories)
    cats = np.array(categories, dtype=object)
    return ItemInfo(
        item_id=np.array([f"i{j}" for j in range(n)], dtype=object),
        title=np.array(titles if titles is not None else [f"item {j}" for j in range(n)], dtype=object),
        category=cats,
        top=np.array([c.split(" > ")[0] if c else "" for c in cats], dtype=object),
        brand=np.array(brands if brands is not None else [""] * n, dtype=object),
        price=np.array(prices if prices is not None else [np.nan] * n, dtype=np.float64),
        created=np.full(n, -1, dtype=np.int64),
        language=np.full(n, "", dtype=object),
        in_stock=np.array(in_stock if in_stock is not None else [True] * n, dtype=bool),
        tags=[[] for _ in range(n)],
    )


def make_candidates(items, scores) -> Candidates:
    items = np.asarray(items, dtype=np.int64)
    cand = Candidates.merge({"src": (items, np.asarray(scores, dtype=np.float32))})
    cand.score = np.asarray(scores, dtype=np.float32).copy()
    return cand


def context(history=(), events=()) -> UserContext:
    h = np.asarray(history, dtype=np.int64)
    return UserContext(0, h, np.arange(len(h), dtype=np.int64), 100, np.asarray(events, dtype=object))


NOBODY = context()

# ------------------------------------------------------------------ a random catalogue for properties
CATEGORIES = [
    "Beauty > Hair > Shampoo",
    "Beauty > Hair",
    "Beauty > Haircare",
    "Beauty > Skin",
    "Home > Kitchen > Mugs",
    "Home > Kitchen",
    "Home",
    "",
]
PREFIXES = ["Beauty", "Beauty > Hair", "Beauty > Haircare", "Home > Kitchen", "Home", "beauty>hair"]
LATIN = ["gun", "Gundam", "GUN", "knife", "Knives", "blue"]
CJK = ["枪", "玩具", "刀", "蓝色"]
BRANDS = ["Acme", "acme ", "Nordhaus", "Voltix", ""]


def _random_catalogue(seed: int = 3, n: int = 40) -> tuple[ItemInfo, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cats = [CATEGORIES[j % len(CATEGORIES)] for j in range(n)]  # every category present
    titles = []
    for _ in range(n):
        latin = " ".join(rng.choice(LATIN, size=rng.integers(0, 3)).tolist())
        titles.append(f"{latin} {''.join(rng.choice(CJK, size=rng.integers(0, 2)).tolist())}x".strip())
    prices = np.round(rng.uniform(1, 100, n), 2)
    prices[rng.random(n) < 0.2] = np.nan
    info = make_info(cats, titles, rng.choice(BRANDS, n).tolist(), prices, rng.random(n) > 0.2)
    counts = rng.zipf(1.6, n).astype(np.float64) * (rng.random(n) > 0.1)
    return info, counts, rng.normal(size=(n, 6))


INFO, COUNTS, VECTORS = _random_catalogue()
N = INFO.n_items


def levels(path: str) -> list[str]:
    return [p.strip().lower() for p in path.split(">")] if path.strip() else []


def under(path: str, prefix: str) -> bool:
    p, q = levels(path), levels(prefix)
    return bool(q) and p[: len(q)] == q


def title_has(title: str, word: str) -> bool:
    if any(ch in "".join(CJK) for ch in word):
        return word in title
    return word.lower() in [t.lower() for t in title.replace("x", " ").split()]


def reference_static_ok(cfg: RulesConfig, j: int) -> bool:
    """Whether item ``j`` passes the static rules, written from the rule descriptions."""
    price = INFO.price[j]
    if INFO.item_id[j] in cfg.blocked_items:
        return False
    if INFO.brand[j].strip().lower() in [b.strip().lower() for b in cfg.blocked_brands]:
        return False
    if any(title_has(INFO.title[j], w) for w in cfg.blocked_words):
        return False
    if cfg.include_categories and not any(under(INFO.category[j], c) for c in cfg.include_categories):
        return False
    if any(under(INFO.category[j], c) for c in cfg.exclude_categories):
        return False
    bounded = cfg.price_min is not None or cfg.price_max is not None
    if bounded and math.isnan(price) and not cfg.keep_unknown_price:
        return False
    if cfg.price_min is not None and price < cfg.price_min or cfg.price_max is not None and price > cfg.price_max:
        return False
    return not (cfg.in_stock_only and not INFO.in_stock[j])


def reference_user_ok(cfg: RulesConfig, ctx: UserContext, j: int) -> bool:
    bought = {h for h, e in zip(ctx.history.tolist(), ctx.events.tolist(), strict=True) if e == "purchase"}
    return not (cfg.exclude_seen and j in ctx.history.tolist() or cfg.exclude_purchased and j in bought)


@st.composite
def rule_sets(draw) -> dict:
    """Random non-conflicting rules (pins are drawn later, among items the rules allow)."""
    include = draw(st.lists(st.sampled_from(PREFIXES), max_size=2, unique=True))
    exclude = [
        c
        for c in draw(st.lists(st.sampled_from(PREFIXES), max_size=2, unique=True))
        if not any(under(i, c) for i in include)
    ]
    bounds = sorted(draw(st.lists(st.floats(0, 120), min_size=2, max_size=2)))
    ids = INFO.item_id.tolist()
    return {
        "exclude_purchased": draw(st.booleans()),
        "exclude_seen": draw(st.booleans()),
        "in_stock_only": draw(st.booleans()),
        "include_categories": include,
        "exclude_categories": exclude,
        "price_min": draw(st.sampled_from([None, bounds[0]])),
        "price_max": draw(st.sampled_from([None, bounds[1]])),
        "keep_unknown_price": draw(st.booleans()),
        "blocked_items": draw(st.lists(st.sampled_from([*ids, "ghost"]), max_size=6, unique=True)),
        "blocked_brands": draw(st.lists(st.sampled_from(["ACME", "nordhaus", "Voltix "]), max_size=2, unique=True)),
        "blocked_words": draw(st.lists(st.sampled_from(["gun", "KNIFE", "枪", "蓝色"]), max_size=2, unique=True)),
        "promoted": draw(st.dictionaries(st.sampled_from(ids), st.floats(0, 2), max_size=4)),
        "longtail_boost": draw(st.sampled_from([0.0, 0.3])),
        "mmr_lambda": draw(st.sampled_from([None, 0.0, 0.5, 1.0])),
        "mmr_window": draw(st.integers(1, 30)),
    }


@st.composite
def requests(draw) -> tuple[np.ndarray, np.ndarray, UserContext, int]:
    """Random candidates, scores, a user's history and k."""
    items = np.array(draw(st.lists(st.integers(0, N - 1), max_size=30, unique=True)), dtype=np.int64)
    scores = np.array(draw(st.lists(st.floats(-5, 5), min_size=len(items), max_size=len(items))))
    history = draw(st.lists(st.integers(0, N - 1), max_size=8))
    events = draw(st.lists(st.sampled_from(["view", "purchase"]), min_size=len(history), max_size=len(history)))
    return items, scores, context(history, events), draw(st.integers(0, 40))


# ------------------------------------------------------------------ properties
@PROPERTY
@given(rule_sets(), requests(), st.data())
def test_no_filtered_item_ever_appears_whatever_its_score(rules_dict, request, data):
    items, scores, ctx, k = request
    cfg = RulesConfig.from_dict(rules_dict)
    static_ok = np.array([reference_static_ok(cfg, j) for j in range(N)])
    if not static_ok.any():
        with pytest.raises(ConfigError, match="no item"):
            Rules(cfg, INFO, COUNTS, VECTORS)
        return
    allowed_pins = INFO.item_id[static_ok].tolist()
    pins = data.draw(st.lists(st.sampled_from(allowed_pins), max_size=3, unique=True))
    slots = data.draw(st.lists(st.integers(0, 12), min_size=len(pins), max_size=len(pins), unique=True))
    cfg.pinned = dict(zip(pins, slots, strict=True))
    rules = Rules(cfg, INFO, COUNTS, VECTORS)
    ok = static_ok & np.array([reference_user_ok(cfg, ctx, j) for j in range(N)])
    scores = np.where(ok[items], scores, 1e30)  # forbidden candidates score highest
    out = rules.apply(make_candidates(items, scores), ctx, k)
    assert ok[out.items].all()
    assert len(set(out.items.tolist())) == len(out)
    pin_rows = [int(np.flatnonzero(INFO.item_id == p)[0]) for p in pins]
    reachable = set(items[ok[items]].tolist()) | {j for j in pin_rows if ok[j]}
    assert len(out) == min(k, len(reachable))
    np.testing.assert_array_equal(rules.allowed_mask(ctx), ok)
    removed = int((~ok[items]).sum())
    note = f"filters removed {removed} of {len(items)} candidates"
    assert removed == 0 or any(n.startswith(note) for n in out.notes)


@PROPERTY
@given(requests(), st.lists(st.integers(0, N - 1), max_size=5, unique=True), st.data())
def test_pinned_items_land_exactly_in_their_slot(request, pinned_items, data):
    items, scores, ctx, k = request
    slots = data.draw(st.lists(st.integers(0, 35), min_size=len(pinned_items), max_size=len(pinned_items), unique=True))
    cfg = RulesConfig(exclude_purchased=True, pinned={f"i{j}": s for j, s in zip(pinned_items, slots, strict=True)})
    out = Rules(cfg, INFO).apply(make_candidates(items, scores), ctx, k)
    bought = set(ctx.purchased().tolist())
    shown_pins = sorted((s, j) for j, s in zip(pinned_items, slots, strict=True) if j not in bought)
    rest = len(set(items.tolist()) - bought - {j for _, j in shown_pins})
    for i, (slot, item) in enumerate(shown_pins):
        place = min(slot, rest + i)  # exact when the list reaches the slot, else last (after earlier pins)
        if place < k:
            assert out.items[place] == item
        else:
            assert item not in out.items
    assert len(out) == min(k, rest + len(shown_pins))
    assert not set(out.items.tolist()) & bought


@PROPERTY
@given(requests(), st.dictionaries(st.integers(0, N - 1), st.floats(0, 3), min_size=1, max_size=4))
def test_promoted_items_move_up_and_never_down(request, boosts):
    items, scores, ctx, _ = request
    assume(len(items) > 1)
    plain = Rules(RulesConfig(), INFO).apply(make_candidates(items, scores), ctx, len(items)).items.tolist()
    cfg = RulesConfig(promoted={f"i{j}": b for j, b in boosts.items()})
    boosted = Rules(cfg, INFO).apply(make_candidates(items, scores), ctx, len(items)).items.tolist()
    promoted = [j for j in boosts if j in plain]
    for p in promoted:
        above_before = set(plain[: plain.index(p)]) - set(boosts)
        above_after = set(boosted[: boosted.index(p)]) - set(boosts)
        assert above_after <= above_before  # no unpromoted item overtakes a promoted one
    if len(promoted) == 1:
        assert boosted.index(promoted[0]) <= plain.index(promoted[0])


@PROPERTY
@given(requests())
def test_longtail_boost_never_lowers_the_tail_share(request):
    items, scores, ctx, k = request
    tail = ~head_mask(COUNTS, 0.8)
    shares = []
    for boost in (0.0, 0.2, 1.0):
        rules = Rules(RulesConfig(longtail_boost=boost), INFO, COUNTS)
        shares.append(tail[rules.apply(make_candidates(items, scores), ctx, k).items].sum())
    assert shares[0] <= shares[1] <= shares[2]


def test_longtail_boost_raises_the_tail_share_on_a_known_example():
    info = make_info(["A"] * 8)
    counts = np.array([100, 90, 80, 70, 1, 1, 1, 0])  # head: items 0..3 (340 of 344 events)
    cand = make_candidates(np.arange(8), [8, 7, 6, 5, 4, 3, 2, 1])
    plain = Rules(RulesConfig(), info, counts).apply(cand, NOBODY, 4)
    boosted = Rules(RulesConfig(longtail_boost=0.5), info, counts).apply(cand, NOBODY, 4)
    assert plain.items.tolist() == [0, 1, 2, 3]
    assert boosted.items.tolist() == [0, 4, 1, 5]  # tail lifted by 0.5 x spread 7 = 3.5
    assert any("long-tail boost +0.5" in n and "4 of 8" in n for n in boosted.notes)


@PROPERTY
@given(
    st.lists(st.floats(-1e30, 1e30), min_size=1, max_size=N),
    st.integers(1, 30),
    st.integers(0, 2**31),
)
def test_mmr_with_lambda_one_is_sorting_by_score(relevance, k, seed):
    rel = np.array(relevance)
    items = np.random.default_rng(seed).permutation(N)[: len(rel)]  # any items, any vectors
    expected = items[np.argsort(-rel, kind="stable")][:k]
    np.testing.assert_array_equal(mmr(items, rel, VECTORS, 1.0, k), expected)


def naive_mmr(items, rel, vectors, lam, k):
    """Textbook MMR with Python loops, the reference for the vectorised one."""
    r = (rel - rel.min()) / (rel.max() - rel.min()) if rel.max() > rel.min() else np.zeros(len(rel))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    chosen: list[int] = []
    while len(chosen) < min(k, len(items)):
        best, best_value = None, -np.inf
        for c in np.argsort(-rel, kind="stable").tolist():  # ties go to the more relevant
            if c in chosen:
                continue
            sim = max((float(unit[items[c]] @ unit[items[s]]) for s in chosen), default=0.0)
            value = lam * r[c] - (1 - lam) * sim
            if value > best_value + 1e-12:
                best, best_value = c, value
        chosen.append(best)
    return items[chosen]


@PROPERTY
@given(st.integers(0, 2**31), st.sampled_from([0.0, 0.3, 0.7]), st.integers(1, 12))
def test_mmr_matches_the_textbook_definition(seed, lam, k):
    rng = np.random.default_rng(seed)
    items = rng.choice(N, size=12, replace=False)
    rel = rng.random(12)  # distinct values almost surely: no ties to break differently
    np.testing.assert_array_equal(mmr(items, rel, VECTORS, lam, k), naive_mmr(items, rel, VECTORS, lam, k))


def test_lower_mmr_lambda_raises_intra_list_diversity_on_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 5
    vectors = np.repeat(centres, 6, axis=0) + rng.normal(scale=0.3, size=(18, 3))
    rel = np.concatenate([np.linspace(1.0, 0.8, 6), np.linspace(0.7, 0.5, 6), np.linspace(0.4, 0.2, 6)])
    items = np.arange(18)
    diversity = [intra_list_distance(mmr(items, rel, vectors, lam, 6), vectors) for lam in (1.0, 0.7, 0.3)]
    assert diversity[0] < diversity[1] <= diversity[2]
    assert set(mmr(items, rel, vectors, 1.0, 6).tolist()) == set(range(6))  # pure relevance: one cluster
    assert {int(i) // 6 for i in mmr(items, rel, vectors, 0.3, 3)} == {0, 1, 2}  # one per cluster


def test_mmr_in_rules_reorders_only_the_window():
    info = make_info(["A"] * 6)
    vectors = np.array([[1, 0], [1, 0.01], [1, 0.02], [0, 1], [0, 1], [0, 1]], dtype=float)
    cand = make_candidates(np.arange(6), [6, 5, 4, 3, 2, 1])
    out = Rules(RulesConfig(mmr_lambda=0.3, mmr_window=4), info, item_vectors=vectors).apply(cand, NOBODY, 6)
    assert out.items.tolist()[:2] == [0, 3] and out.items.tolist()[4:] == [4, 5]
    same = Rules(RulesConfig(mmr_lambda=1.0), info, item_vectors=vectors).apply(cand, NOBODY, 6)
    assert same.items.tolist() == list(range(6))


# ------------------------------------------------------------------ matching, hand-checked
def test_category_prefix_matches_at_level_boundaries():
    cats = np.array(["Beauty > Hair > Shampoo", "Beauty > Hair", "Beauty > Haircare", "Beauty", "", "Home"], object)
    assert category_mask(cats, ["Beauty > Hair"]).tolist() == [True, True, False, False, False, False]
    assert category_mask(cats, [" beauty>HAIR "]).tolist() == [True, True, False, False, False, False]
    assert category_mask(cats, ["Beauty"]).tolist() == [True, True, True, True, False, False]
    info = make_info(list(cats))
    shown = Rules(RulesConfig(include_categories=["Beauty > Hair"]), info).apply(
        make_candidates(np.arange(6), np.arange(6.0)), NOBODY, 6
    )
    assert sorted(shown.items.tolist()) == [0, 1]


def test_blocked_words_whole_word_for_latin_and_substring_for_cjk():
    titles = np.array(
        [
            "Toy gun set",
            "Gundam model",
            "玩具枪套装",
            "玩具gun",
            "ＧＵＮ holster",
            "shotgun",
            "Hate  speech mug",
            "Mug",
        ],
        object,
    )
    assert word_mask(titles, ["gun"]).tolist() == [True, False, False, True, True, False, False, False]
    assert word_mask(titles, ["枪"]).tolist() == [False, False, True, False, False, False, False, False]
    assert word_mask(titles, ["hate speech"]).tolist()[6]
    assert not word_mask(titles, ["mug set"]).any()
    info = make_info(["A"] * 8, titles=list(titles))
    out = Rules(RulesConfig(blocked_words=["GUN", "枪"]), info).apply(
        make_candidates(np.arange(8), np.full(8, 1e30)), NOBODY, 8
    )
    assert sorted(out.items.tolist()) == [1, 5, 6, 7]
    assert "filters removed 4 of 8 candidates: 4 blocked word" in out.notes


def test_brand_price_stock_and_history_filters_with_counted_note():
    info = make_info(
        ["A"] * 7,
        brands=["Acme", " ACME", "Nord", "Nord", "Nord", "Nord", "Nord"],
        prices=[5, 5, 5, 500, np.nan, 20, 30],
        in_stock=[True, True, True, True, True, False, True],
    )
    cfg = RulesConfig(
        blocked_brands=["acme"], price_max=100, in_stock_only=True, exclude_purchased=True, keep_unknown_price=True
    )
    ctx = context([2, 6, 4], ["purchase", "view", "view"])
    out = Rules(cfg, info).apply(make_candidates(np.arange(7), np.arange(7.0)), ctx, 10)
    assert out.items.tolist() == [6, 4]  # 4 has no price: kept by keep_unknown_price
    assert out.notes[0] == "filters removed 5 of 7 candidates: 2 blocked brand, 1 price, 1 out of stock, 1 purchased"
    strict = Rules(RulesConfig(price_max=100, keep_unknown_price=False, exclude_seen=True), info)
    assert strict.apply(make_candidates(np.arange(7), np.arange(7.0)), ctx, 10).items.tolist() == [5, 1, 0]
    assert strict.allowed_mask(ctx).tolist() == [True, True, False, False, False, True, False]


def test_pins_outside_candidates_are_added_and_filtered_pins_skipped():
    info = make_info(["A"] * 6)
    cfg = RulesConfig(exclude_purchased=True, pinned={"i5": 0, "i4": 2, "i3": 9})
    cand = make_candidates([0, 1, 2, 3], [4, 3, 2, 1])
    out = Rules(cfg, info).apply(cand, context([4], ["purchase"]), 10)
    assert out.items.tolist() == [5, 0, 1, 2, 3]  # i4 bought: skipped; i3 (a candidate) past the end goes last
    assert out.proposed_by(0) == [] and math.isnan(out.score[0])
    assert out.proposed_by(4) == ["src"]  # a pinned candidate keeps its provenance
    assert "skipped 1 of 3 pinned items: 1 purchased" in out.notes
    assert cand.notes == [] and cand.items.tolist() == [0, 1, 2, 3]  # input untouched


def test_head_mask_takes_the_share_and_keeps_ties_together():
    assert head_mask(np.array([50, 30, 10, 5, 5, 0]), 0.8).tolist() == [True, True, False, False, False, False]
    assert head_mask(np.array([40, 20, 20, 20]), 0.5).all()
    assert not head_mask(np.zeros(3), 0.8).any()
    assert head_mask(np.array([3, 2, 0]), 1.0).tolist() == [True, True, False]


def test_rules_on_the_demo_shop():
    from shoprec.data.demo import generate_preset

    ds = generate_preset("small").to_dataset()
    info = ItemInfo.from_dataset(ds)
    counts = np.asarray(ds.matrix("binary").sum(axis=0)).ravel()
    cfg = RulesConfig.from_dict(
        {"exclude_purchased": True, "include_categories": ["Home & Kitchen"], "longtail_boost": 0.1}, where="demo"
    )
    rules = Rules(cfg, info, counts)
    ctx = next(c for c in contexts_from_dataset(ds, np.arange(ds.n_users)) if len(c.purchased()))
    out = rules.apply(make_candidates(np.arange(ds.n_items), counts), ctx, 20)
    assert len(out) == 20
    assert all(c.startswith("Home & Kitchen > ") for c in info.category[out.items])
    assert not set(out.items.tolist()) & set(ctx.purchased().tolist())


# ------------------------------------------------------------------ configuration errors
def test_defaults_change_nothing():
    cand = make_candidates([3, 1, 2], [0.5, 0.9, 0.1])
    out = Rules(RulesConfig(), INFO).apply(cand, context([1], ["purchase"]), 10)
    assert out.items.tolist() == [1, 3, 2] and out.notes == []


def test_unknown_keys_are_rejected_listing_valid_ones():
    with pytest.raises(ConfigError, match=r"shop\.toml: rules: unknown setting 'exclude_bought'.*exclude_purchased"):
        RulesConfig.from_dict({"exclude_bought": True}, where="shop.toml: rules")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"include_categories": "Beauty"}, "include_categories: expected a list of strings, got str"),
        ({"pinned": {"i1": 1.5}}, "pinned: expected a table of item id \\(a string\\) -> an integer"),
        ({"price_min": "5"}, "price_min: expected a finite number or nothing"),
        ({"exclude_seen": "yes"}, "exclude_seen: expected true or false"),
        ({"mmr_window": True}, "mmr_window: expected an integer"),
        ({"promoted": {"i1": float("nan")}}, "promoted: expected a table"),
    ],
)
def test_wrong_types_are_rejected(settings, message):
    with pytest.raises(ConfigError, match=message):
        RulesConfig.from_dict(settings)


CONFLICT_INFO = make_info(
    ["Beauty > Hair", "Beauty > Skin", "Home"],
    titles=["Shampoo", "Toy gun", "Mug"],
    brands=["Acme", "Nord", "Nord"],
    prices=[5.0, 50.0, np.nan],
    in_stock=[True, False, True],
)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"price_min": 10, "price_max": 5}, "price_min 10 > price_max 5"),
        ({"include_categories": ["Beauty"], "exclude_categories": ["beauty"]}, "both included and excluded"),
        ({"include_categories": ["Beauty > Hair"], "exclude_categories": ["Beauty"]}, "'Beauty > Hair' is under"),
        ({"pinned": {"i0": 0}, "blocked_items": ["i0"]}, "'i0' .*in blocked_items"),
        ({"pinned": {"i0": 0}, "blocked_brands": ["ACME"]}, "'i0' .*blocked_brands"),
        ({"pinned": {"i1": 0}, "in_stock_only": True}, "'i1' .*out of stock"),
        ({"pinned": {"i2": 0}, "exclude_categories": ["Home"]}, "'i2' .*category is excluded"),
        ({"pinned": {"i0": 0}, "price_min": 10}, "'i0' .*price is outside"),
        ({"pinned": {"i2": 0}, "price_min": 1, "keep_unknown_price": False}, "'i2' .*price is outside"),
        ({"pinned": {"i1": 0}, "blocked_words": ["gun"]}, "'i1' .*blocked word 'gun'"),
        ({"pinned": {"i0": 3, "i2": 3}}, r"slot 3 is given to 2 items \('i0', 'i2'\)"),
        ({"pinned": {"i0": -1}}, "negative slot"),
        ({"promoted": {"i0": -0.5}}, "negative boosts for 'i0'"),
        ({"longtail_boost": -1}, "longtail_boost: negative boost"),
        ({"pinned": {"ghost": 0}}, "pinned: 'ghost' not in the catalogue"),
        ({"promoted": {"nope": 1.0}}, "promoted: 'nope' not in the catalogue"),
        ({"mmr_lambda": 1.5}, r"mmr_lambda 1.5 outside \[0, 1\]"),
        ({"head_share": 0}, "head_share 0 outside"),
        ({"blocked_words": [" "]}, "empty word"),
        ({"include_categories": ["Garden"]}, "none of 'Garden' matches any item"),
        ({"blocked_brands": ["Acme", "Nord"]}, "leave no item"),
    ],
)
def test_conflicting_configs_raise_config_error_naming_the_conflict(settings, message):
    with pytest.raises(ConfigError, match=message):
        RulesConfig(**settings).validate(CONFLICT_INFO)
    with pytest.raises(ConfigError, match=message):  # from_dict + loading the rules fails the same way
        Rules(RulesConfig.from_dict(settings), CONFLICT_INFO)


def test_every_conflict_is_listed_at_once_and_unknown_blocked_ids_are_warnings():
    with pytest.raises(ConfigError) as error:
        RulesConfig(price_min=10, price_max=5, mmr_lambda=-1, promoted={"i0": -1}).validate(CONFLICT_INFO)
    assert all(part in str(error.value) for part in ("price_min", "mmr_lambda", "promoted"))
    rules = Rules(
        RulesConfig(blocked_items=["i0", "old-1", "old-2"], promoted={"i1": 1.0}, in_stock_only=True), CONFLICT_INFO
    )
    assert "blocked_items: 2 of 3 ids not in the catalogue ('old-1', 'old-2')" in rules.warnings
    assert "promoted item 'i1' is never shown: out of stock" in rules.warnings


def test_missing_inputs_and_bad_requests_are_errors():
    with pytest.raises(ConfigError, match="popularity counts"):
        Rules(RulesConfig(longtail_boost=0.2), INFO)
    with pytest.raises(ConfigError, match="item vectors"):
        Rules(RulesConfig(mmr_lambda=0.5), INFO)
    with pytest.raises(ModelError, match="popularity_counts must hold"):
        Rules(RulesConfig(longtail_boost=0.2), INFO, np.ones(3))
    rules = Rules(RulesConfig(), INFO)
    with pytest.raises(ModelError, match="outside"):
        rules.apply(make_candidates([0, N + 5], [1, 2]), NOBODY, 5)
    with pytest.raises(ModelError, match="non-negative"):
        rules.apply(make_candidates([0], [1]), NOBODY, -1)
