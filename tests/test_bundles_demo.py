"""Bundles on the small demo shop: planted complement groups come back, the service call and CLI work."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest

from shoprec.bundles.api import recommend_bundle
from shoprec.bundles.complements import ComplementModel
from shoprec.bundles.objective import BundleConstraints, InfeasibleBundle
from shoprec.bundles.recommender import Anchor, BundleRecommender
from shoprec.cli import bundle_cmd
from shoprec.data.demo import generate_preset
from shoprec.errors import DataError, ModelError


@pytest.fixture(scope="module")
def shop():
    return generate_preset("small")


@pytest.fixture(scope="module")
def dataset(shop):
    return shop.to_dataset()


@pytest.fixture(scope="module")
def encode(dataset):
    """A tiny text encoder (TF-IDF + SVD over the catalogue's titles and categories)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = (dataset.items["title"] + " " + dataset.items["category"]).tolist()
    tfidf = TfidfVectorizer().fit(texts)
    svd = TruncatedSVD(64, random_state=0).fit(tfidf.transform(texts))
    return lambda batch: svd.transform(tfidf.transform(list(batch))).astype(np.float32)


@pytest.fixture(scope="module")
def rec(dataset, encode):
    texts = (dataset.items["title"] + " " + dataset.items["category"]).tolist()
    return BundleRecommender(encode=encode).fit(dataset, encode(texts))


def groups(shop, dataset) -> list[np.ndarray]:
    return [dataset.item_vocab.index(np.array(g, dtype=object)) for g in shop.truth["complement_groups"]]


def test_planted_complement_groups_are_recovered_as_bundles(shop, dataset, rec) -> None:
    hits = total = popular_hits = 0
    popular = np.argsort(-rec.model.popularity)
    for group in groups(shop, dataset):
        for anchor in group.tolist():
            size = len(group)
            bundle = rec.recommend(Anchor(items=(anchor,)), BundleConstraints(min_size=size, max_size=size))
            assert bundle.items[0] == anchor and len(bundle.items) == size
            hits += len(set(bundle.added.tolist()) & set(group.tolist()))
            popular_hits += len(set(popular[popular != anchor][: size - 1].tolist()) & set(group.tolist()))
            total += size - 1
    assert hits / total >= 0.75, hits / total
    assert hits > 3 * popular_hits


def test_complements_cross_categories_and_substitutes_stay_within(shop, dataset, rec) -> None:
    group = groups(shop, dataset)[1]
    comp, subst = rec.model.scores(group[:1], group[1:])
    assert (comp > 0).all() and (subst == 0).all()
    leaf = rec.model.leaf
    same = np.flatnonzero((leaf == leaf[group[0]]) & (np.arange(len(leaf)) != group[0]))
    subst_same = rec.model.substitute_rows(group[:1], same)[0]
    assert subst_same.max() > 0.2
    other = np.flatnonzero(leaf != leaf[group[0]])
    assert rec.model.substitute_rows(group[:1], other).max() == 0.0


def test_a_new_item_gets_complements_through_text(shop, dataset, rec) -> None:
    group = groups(shop, dataset)[3]
    cold = int(group[1])
    train = dataset.subset((dataset.interactions["item"] != cold).to_numpy())
    model = ComplementModel().fit(train, rec.model.vectors)
    assert model.occurrences[cold] == 0
    row = model.complement_rows(np.array([cold]))[0]
    ranks = np.argsort(np.argsort(-row))
    partners = [int(i) for i in group if i != cold]
    assert ranks[partners].mean() < 0.2 * dataset.n_items
    assert model.scores(np.array([cold]), np.array(partners))[0].min() > 0


def test_budget_and_category_rules_hold_through_the_service_call(shop, rec) -> None:
    anchor = shop.truth["complement_groups"][0][0]
    out = recommend_bundle(rec, items=[anchor], budget=150.0, max_size=4, min_size=2)
    assert out["total_price"] <= 150.0
    cats = [row["category"] for row in out["items"]]
    assert len(cats) == len(set(cats)) and 2 <= len(cats) <= 4
    assert out["items"][0]["item_id"] == anchor and out["items"][0]["role"] == "anchor"


def test_solvers_agree_or_beat_greedy_on_real_instances(shop, rec, dataset) -> None:
    for group in groups(shop, dataset)[:4]:
        anchor = Anchor(items=(int(group[0]),))
        con = BundleConstraints(min_size=2, max_size=4, budget=300.0)
        values = {s: rec.recommend(anchor, con, s).solution.value for s in ("greedy", "local", "genetic")}
        assert values["local"] >= values["greedy"] - 1e-9 and values["genetic"] >= values["greedy"] - 1e-9
        exact = rec.recommend(anchor, con, "exact").solution
        assert exact.optimal


def test_explanations_in_english_and_chinese(shop, rec) -> None:
    anchor = shop.truth["complement_groups"][1][0]
    en = recommend_bundle(rec, items=[anchor], max_size=3)
    zh = recommend_bundle(rec, items=[anchor], max_size=3, language="zh")
    assert [r["item_id"] for r in en["items"]] == [r["item_id"] for r in zh["items"]]
    added = [r for r in en["items"] if r["role"] == "added"]
    assert added and all(r["reason_kind"] in ("co_purchase", "category", "transfer", "shared_words") for r in added)
    assert any("order" in r["reason"] for r in added)
    assert re.search(r"[\u4e00-\u9fff]", zh["summary"]) and all(
        re.search(r"[\u4e00-\u9fff]", r["reason"]) for r in zh["items"]
    )
    with pytest.raises(Exception, match="unknown language"):
        recommend_bundle(rec, items=[anchor], language="fr")


def test_intent_and_user_anchors(dataset, rec) -> None:
    out = recommend_bundle(rec, intent="memory card for my camera", max_size=3, min_size=3)
    cats = [row["category"] for row in out["items"]]
    assert "Electronics > Cameras > Memory Cards" in cats
    assert all(row["role"] == "added" for row in out["items"])
    user = dataset.user_vocab.ids()[0]
    out = recommend_bundle(rec, user=user, max_size=3)
    bought = set(dataset.interactions.query("user == 0 and event == 'purchase'")["item"].tolist())
    chosen = set(dataset.item_vocab.index(np.array([r["item_id"] for r in out["items"]], dtype=object)).tolist())
    assert not chosen & bought


def test_bad_input_is_reported(shop, rec) -> None:
    anchor = shop.truth["complement_groups"][0][0]
    with pytest.raises(DataError, match="unknown anchor item 'NOPE'"):
        recommend_bundle(rec, items=["NOPE"])
    with pytest.raises(DataError, match="unknown user"):
        recommend_bundle(rec, user="nobody")
    with pytest.raises(ModelError, match="needs an anchor"):
        recommend_bundle(rec)
    every = sorted(set(rec.info.category.tolist()) - {rec.info.category[rec.dataset.item_vocab.index([anchor])[0]]})
    with pytest.raises(InfeasibleBundle, match="size"):
        recommend_bundle(rec, items=[anchor], excluded_categories=every)
    with pytest.raises(InfeasibleBundle, match="budget"):
        recommend_bundle(rec, items=[anchor], budget=1.0)
    with pytest.raises(ModelError, match="encoder"):
        BundleRecommender().fit(rec.dataset, rec.model.vectors).recommend(Anchor(intent="camera"))


def test_cli_bundle_command(shop, tmp_path, capsys) -> None:
    folder = shop.write(tmp_path / "shop")
    parser = argparse.ArgumentParser()
    bundle_cmd.add_commands(parser.add_subparsers())
    anchor = shop.truth["complement_groups"][2][0]
    args = parser.parse_args(["bundle", str(folder), "--item", anchor, "--size", "3", "--budget", "500", "--json"])
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    out = json.loads(printed[printed.index("\n{") :])
    assert [r["role"] for r in out["items"]] == ["anchor", "added", "added"] and out["total_price"] <= 500
    args = parser.parse_args(["bundle", str(folder), "--item", anchor, "--size", "2-3", "--solver", "genetic"])
    assert args.run(args) == 0
    text = capsys.readouterr().out
    assert "anchor" in text and "solver genetic" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["bundle", str(folder), "--size", "x"])


def test_pruning_keeps_the_cheapest_valid_bundle_reachable(shop, dataset, rec) -> None:
    anchor = int(groups(shop, dataset)[0][0])
    info = rec.info
    others = info.category != info.category[anchor]
    cheapest = sorted(min(info.price[others & (info.category == c)]) for c in set(info.category[others].tolist()))
    budget = float(info.price[anchor] + cheapest[0] + cheapest[1]) + 1e-6
    bundle = rec.recommend(Anchor(items=(anchor,)), BundleConstraints(min_size=3, max_size=3, budget=budget))
    assert bundle.total_price <= budget and len(bundle.items) == 3
    with pytest.raises(InfeasibleBundle, match="budget"):
        rec.recommend(Anchor(items=(anchor,)), BundleConstraints(min_size=3, max_size=3, budget=budget - 0.02))
