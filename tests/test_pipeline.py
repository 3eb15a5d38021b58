"""The pipeline end to end on the demo shop: provenance, the learned ranker, rules in every
scenario, the cold-start and empty-candidate paths, configuration from TOML."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pytest

from shoprec.data.demo import generate_demo_shop, generate_preset
from shoprec.errors import ConfigError, ModelError
from shoprec.eval import leave_last_out
from shoprec.models import create_model
from shoprec.models.itemgraph import ItemGraph
from shoprec.pipeline.calendar import Calendar
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.config import build_pipeline, config_from_dict, load_config
from shoprec.pipeline.context import UserContext, contexts_from_dataset
from shoprec.pipeline.crosscat import CrossCategory
from shoprec.pipeline.explain_text import render
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.ranking import ndcg_at
from shoprec.pipeline.rules_config import RulesConfig
from shoprec.pipeline.scenarios import SCENARIOS, Scenarios
from shoprec.pipeline.sources import BuyAgainSource, ItemToItemSource, ModelSource, PopularitySource


@pytest.fixture(scope="module")
def shop():
    return generate_preset("small", seed=3)


@pytest.fixture(scope="module")
def dataset(shop):
    return shop.to_dataset()


def small_pipeline(**options) -> Pipeline:
    sources = [
        ModelSource("ease", create_model("ease", reg=50.0)),
        ItemToItemSource("i2i"),
        PopularitySource("trending", window_days=7),
    ]
    return Pipeline(sources, recall_k=30, **options)


@pytest.fixture(scope="module")
def fitted(dataset):
    """A pipeline with a learned ranker, trained on the validation stage, refitted for test."""
    valid = leave_last_out(dataset, stage="valid")
    pipe = small_pipeline().fit(valid.train)
    pipe.fit_ranker(contexts_from_dataset(valid.train, valid.users), valid.truth)
    test = leave_last_out(dataset, stage="test")
    pipe.fit(test.train)
    return pipe, test


def test_merge_keeps_every_sources_score_and_rank():
    cand = Candidates.merge(
        {"a": (np.array([3, 5, -1]), np.array([0.9, 0.4, np.nan])), "b": (np.array([5, 8]), np.array([12.0, 7.0]))}
    )
    assert cand.items.tolist() == [3, 5, 8]
    assert cand.proposed_by(1) == ["a", "b"]
    assert cand.source_ranks.tolist() == [[0, -1], [1, 0], [-1, 1]]
    assert np.isnan(cand.source_scores[2, 0]) and cand.source_scores[1, 1] == 12.0


def test_provenance_survives_to_the_final_list(fitted):
    pipe, test = fitted
    contexts = contexts_from_dataset(test.train, test.users[:20])
    own = {s.name: s.recall(contexts, 30) for s in pipe.sources}
    for u, rec in enumerate(pipe.recommend(contexts, k=10)):
        for row, item in enumerate(rec.items.tolist()):
            for j, name in enumerate(rec.candidates.sources):
                items, scores = own[name][u]
                rank = rec.candidates.source_ranks[row, j]
                if rank >= 0:
                    assert items[rank] == item and scores[rank] == pytest.approx(rec.candidates.source_scores[row, j])
                else:
                    assert item not in items.tolist()


def test_source_shares_credit_only_proposing_sources_and_sum_to_one(fitted):
    """Occlusion shares: a source that did not propose an item changes nothing when taken away, so
    its share is 0; shares of an item sum to 1 (or are all 0 when no source lifts its score)."""
    pipe, test = fitted
    contexts = contexts_from_dataset(test.train, test.users[:30])
    lifted = 0
    for rec in pipe.recommend(contexts, k=10):
        proposed = rec.candidates.source_ranks >= 0
        assert np.all(rec.source_shares[~proposed] == 0)
        totals = rec.source_shares.sum(axis=1)
        assert np.all(np.isclose(totals, 1.0, atol=1e-5) | (totals == 0))
        lifted += int((totals > 0).sum())
    assert lifted > 100, "most shown items owe their score to some source"


def test_learned_ranker_beats_equal_fusion_on_planted_tastes():
    """On a mid-size demo shop the trained ranker orders candidates better than equal fusion."""
    data = generate_demo_shop(seed=5, n_items=800, n_users=700, days=90).to_dataset()
    valid = leave_last_out(data, stage="valid")
    pipe = small_pipeline().fit(valid.train)
    pipe.fit_ranker(contexts_from_dataset(valid.train, valid.users), valid.truth)
    test = leave_last_out(data, stage="test")
    pipe.fit(test.train)
    contexts = contexts_from_dataset(test.train, test.users)

    def mean_ndcg(mode: str) -> float:
        recs = pipe.recommend(contexts, k=10, mode=mode, with_shares=False)
        return np.mean(
            [
                ndcg_at(-np.arange(10.0), np.isin(r.items, test.truth[c.user].indices).astype(float), 10, 1)
                for c, r in zip(contexts, recs, strict=True)
            ]
        )

    learned, equal = mean_ndcg("learned"), mean_ndcg("none")
    assert learned > equal, (learned, equal)
    assert pipe.ranker.importance()["leaf_share"] > 0  # the planted category tastes are used


def test_blocked_and_filtered_items_never_appear_in_any_scenario(dataset, fitted):
    pipe, test = fitted
    info = pipe.resources.info
    popular = np.argsort(-np.bincount(test.train.interactions["item"], minlength=info.n_items))[:15]
    brand = next(b for b in info.brand[popular] if b)
    rules = RulesConfig(blocked_items=[str(info.item_id[i]) for i in popular[:10]], blocked_brands=[brand])
    blocked = set(popular[:10].tolist()) | set(np.flatnonzero(info.brand == brand).tolist())
    now = int(test.train.interactions["timestamp"].max()) + 1
    day = datetime.fromtimestamp(now, tz=UTC).date().isoformat()
    calendar = Calendar.from_dicts([{"name": "Sale", "start": day, "end": day, "categories": [info.top[popular[0]]]}])
    ruled = small_pipeline(rules=rules, calendar=calendar).fit(test.train)
    ruled.ranker, ruled.fusion = pipe.ranker, pipe.fusion
    graph = ItemGraph.build(test.train)
    crosscat = CrossCategory(mode="graph").fit(test.train, None, info.category)
    feeds = Scenarios(ruled, graph=graph, crosscat=crosscat)
    contexts = contexts_from_dataset(test.train, test.users[:15])
    shown = {}
    for scenario in SCENARIOS:
        for ctx in contexts:
            rec = feeds.run(scenario, ctx, k=10, anchor=int(popular[0]))
            assert not blocked & set(rec.items.tolist()), scenario
            assert not set(ctx.history.tolist()) & set(rec.items.tolist()), scenario
            shown.setdefault(scenario, set()).update(rec.items.tolist())
    promoted = {i for i in shown["promotions"] if info.top[i] == info.top[popular[0]]}
    assert promoted, "the active promotion's category reaches its feed"
    assert all(len(v) for v in shown.values())


def test_unknown_user_gets_the_cold_start_path(fitted):
    pipe, _ = fitted
    cold = UserContext(-1, np.empty(0, np.int64), np.empty(0, np.int64), now=pipe.features.windows.newest)
    [rec] = pipe.recommend([cold], k=10)
    assert len(rec.items) == 10 and len(set(rec.items.tolist())) == 10
    assert "trending" in rec.candidates.proposed_by(0)


def test_empty_candidates_after_filters_fill_from_fallback_and_say_so(dataset, fitted):
    _, test = fitted
    info_cats = sorted({c.split(" > ")[0] for c in dataset.items["category"]})
    rules = RulesConfig(include_categories=[info_cats[0]])
    pipe = Pipeline([BuyAgainSource("again")], rank="none", rules=rules).fit(test.train)
    ctx = contexts_from_dataset(test.train, test.users[:1])[0]
    [rec] = pipe.recommend([ctx], k=5)
    assert len(rec.items) == 5
    assert all(pipe.resources.info.top[i] == info_cats[0] for i in rec.items)
    assert any("filled" in note and "fallback" in note for note in rec.notes)


def test_live_click_changes_the_next_request(fitted):
    pipe, test = fitted
    ctx = contexts_from_dataset(test.train, test.users[:1])[0]
    [before] = pipe.recommend([ctx], k=10)
    clicked = int(before.items[0])
    live = UserContext(ctx.user, np.append(ctx.history, clicked), np.append(ctx.times, ctx.now), ctx.now + 1)
    [after] = pipe.recommend([live], k=10)
    assert clicked not in after.items.tolist()  # seen now, so excluded
    i2i = pipe.source("i2i")
    neighbours = set(i2i.recall([live], 10)[0][0].tolist())
    assert neighbours & set(after.items.tolist())


def test_explanations_name_the_planted_complement(shop, dataset):
    graph = ItemGraph.build(dataset)
    pipe = Pipeline([ItemToItemSource("i2i")], rank="none").fit(dataset)
    feeds = Scenarios(pipe, graph=graph)
    index = {item_id: i for i, item_id in enumerate(pipe.resources.info.item_id.tolist())}
    hits = total = 0
    for group in shop.truth["complement_groups"][:10]:
        a, b = index[group[0]], index[group[1]]
        filler = [i for i in range(5) if i not in (a, b)][:3]
        history = np.array([*filler, a])
        ctx = UserContext(-1, history, np.arange(len(history)) + 1, now=100)
        cand = Candidates.merge({"i2i": (np.array([b]), np.array([1.0]))})
        rec = type("R", (), {})()
        rec.candidates, rec.source_shares = cand, np.ones((1, 1), np.float32)
        [exp] = feeds.explain(ctx, rec, scenario="complements")
        if exp.drivers:
            total += 1
            hits += exp.drivers[0].item == a
            assert pipe.resources.info.title[a][:10] in render(exp, "en") or exp.drivers[0].item != a
    assert total >= 5 and hits / total >= 0.8


TOML = """
[pipeline]
k = 5
recall_k = 20
rank = "fusion"

[[source]]
name = "also-bought"
type = "item-to-item"

[[source]]
name = "trending"
type = "popularity"
window_days = 7

[rules]
exclude_purchased = true
price_max = 50.0
"""


def test_pipeline_from_toml_runs(tmp_path, fitted):
    _, test = fitted
    path = tmp_path / "pipeline.toml"
    path.write_text(TOML)
    pipe = build_pipeline(load_config(path)).fit(test.train)
    ctx = contexts_from_dataset(test.train, test.users[:3])
    recs = pipe.recommend(ctx)
    info = pipe.resources.info
    for rec in recs:
        assert len(rec.items) == 5
        prices = info.price[rec.items]
        assert np.all(np.isnan(prices) | (prices <= 50.0))
        assert set(rec.timings) >= {"recall.also-bought", "recall.trending", "merge", "rank", "rerank"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[pipeline]\nrank = "magic"\n[[source]]\nname="p"\ntype="popularity"', "rank must be one of"),
        ('[[source]]\nname="p"\ntype="popularity"\n[rules]\nprice_min = 10\nprice_max = 5', "price_min"),
        ('[[source]]\nname="p"\ntype="warp"', "type must be one of"),
        ('[[source]]\nname="p"\ntype="popularity"\nwindow = 3', "unknown key 'window'"),
        ('[[source]]\nname="p"\ntype="popularity"\n[rules]\ninclude_categories=["A"]\nexclude_categories=["A"]', "A"),
        ("[pipeline]\nk = 3", "no [[source]]"),
        (
            '[[source]]\nname="p"\ntype="popularity"\n[[promotion]]\nname="x"\nstart="2025-13-40"\nend="2025-12-01"\n'
            'tags=["gift"]',
            "start",
        ),
        ('[[source]]\nname="m"\ntype="model"\nmodel="nope"', "nope"),
    ],
)
def test_bad_configuration_fails_at_load_with_a_clear_message(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[")):
        load_config(path)


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[pipeline\nk=")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_config(path)


def test_unfitted_pipeline_and_unknown_anchor_are_clear_errors(fitted):
    with pytest.raises(ModelError, match="not fitted"):
        small_pipeline().recommend([UserContext(-1, np.empty(0, np.int64), np.empty(0, np.int64), 0)])
    pipe, test = fitted
    ctx = contexts_from_dataset(test.train, test.users[:1])[0]
    with pytest.raises(ModelError, match="unknown anchor"):
        Scenarios(pipe).run("similar", ctx, anchor=10**6)
    with pytest.raises(ConfigError, match="unknown scenario"):
        Scenarios(pipe).run("everything", ctx)
    assert config_from_dict({"source": [{"name": "p", "type": "popularity"}]}).k == 10


def test_catalogue_with_ids_and_titles_only(shop):
    """Amazon Beauty and Online Retail have no categories, prices or launch dates: the features
    for them stay NaN and the learned ranker still trains and ranks."""
    bare = dataclasses.replace(shop, items=shop.items[["item_id", "title"]].copy())
    data = bare.to_dataset()
    valid = leave_last_out(data, stage="valid")
    pipe = small_pipeline().fit(valid.train)
    pipe.fit_ranker(contexts_from_dataset(valid.train, valid.users), valid.truth)
    X = pipe.feature_matrix(
        contexts_from_dataset(valid.train, valid.users[:5]),
        pipe.candidates(contexts_from_dataset(valid.train, valid.users[:5])),
    )
    names = pipe.features.names(pipe.source_names)
    for name in ("leaf_share", "top_share", "price_z", "log_price"):
        assert np.isnan(X[:, names.index(name)]).all(), name
    recs = pipe.recommend(contexts_from_dataset(valid.train, valid.users[:5]), k=10)
    assert all(len(r.items) == 10 for r in recs)
