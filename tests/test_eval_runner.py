"""The evaluation runner and reports: an oracle must score perfectly, popularity must agree with
the metric functions, and the report files must be what other tools read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from shoprec.errors import ModelError
from shoprec.eval import EvalResult, evaluate, format_table, leave_last_out, temporal_split, write_report
from shoprec.eval.metrics import ndcg, recall
from shoprec.eval.splits import DAY
from shoprec.models import Recommender, create_model
from tinydata import make_dataset


class Oracle(Recommender):
    """Scores the held-out items highest: every accuracy metric must come out as 1."""

    name = "oracle-test"

    def __init__(self, truth: sp.csr_matrix) -> None:
        super().__init__()
        self.truth = truth

    def _fit(self, dataset) -> None:
        pass

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.truth[users].toarray().astype(np.float32)


@pytest.fixture
def shop():
    """25 users over 30 items; each user's items are distinct, so held-out items are never seen."""
    rng = np.random.default_rng(7)
    popular = rng.permutation(30)
    events = []
    for u in range(25):
        n = int(rng.integers(2, 9))
        picks = rng.choice(popular, size=n, replace=False, p=np.linspace(2, 0.2, 30) / np.linspace(2, 0.2, 30).sum())
        events += [(f"u{u}", f"i{item}", int(t * 3 * DAY + u), "purchase") for t, item in enumerate(picks)]
    return make_dataset(events, [f"i{i}" for i in range(30)])


def test_oracle_scores_one_on_leave_last_out(shop):
    split = leave_last_out(shop)
    result = evaluate({"oracle": Oracle(split.truth)}, split, ks=(1, 10), progress=False)
    metrics = result.models["oracle"].metrics
    for key in ("hr@1", "ndcg@1", "mrr@1", "recall@1", "precision@1", "f1@1", "hr@10", "ndcg@10", "recall@10"):
        assert metrics[key] == pytest.approx(1.0), key
    assert metrics["precision@10"] == pytest.approx(0.1)
    assert result.models["oracle"].users == split.info["users_evaluated"] > 0


def test_oracle_finds_every_repeat_item_on_temporal_repeat():
    events = [("a", "x", 0), ("a", "y", 1), ("b", "y", 2), ("a", "x", 20 * DAY), ("a", "z", 21 * DAY)]
    events += [("b", "z", 22 * DAY), ("b", "w", 23 * DAY), ("b", "y", 23 * DAY)]
    split = temporal_split(make_dataset(events), test_days=5)
    assert not split.exclude_seen
    metrics = evaluate({"oracle": Oracle(split.truth)}, split, ks=(3,), progress=False).models["oracle"].metrics
    assert metrics["recall@3"] == metrics["ndcg@3"] == metrics["hr@3"] == pytest.approx(1.0)


def test_popularity_agrees_with_the_metric_functions(shop):
    split = leave_last_out(shop)
    result = evaluate({"pop": create_model("popularity")}, split, ks=(5, 10, 20), progress=False)
    model = result.models["pop"]
    recs, _ = create_model("popularity").fit(split.train).recommend(split.users, k=20)
    truth = split.truth[split.users]
    assert model.metrics["ndcg@10"] == pytest.approx(ndcg(recs, truth, 10).mean())
    assert model.metrics["recall@20"] == pytest.approx(recall(recs, truth, 20).mean())
    assert 0 < model.metrics["hr@10"] < 1
    lo, hi = model.ci95["hr@10"]
    assert lo < model.metrics["hr@10"] < hi
    assert model.metrics["coverage@5"] <= model.metrics["coverage@20"] <= 1
    assert model.unknown_users == 0 and model.fit_seconds > 0 and model.recommend_seconds > 0
    assert {"novelty@10", "longtail@10", "mrr@10", "f1@10", "precision@5"} <= set(model.metrics)
    assert "diversity@10" not in model.metrics


def test_batches_item_vectors_and_prefitted_models(shop):
    split = leave_last_out(shop)
    fitted = create_model("popularity").fit(split.train)
    vectors = np.random.default_rng(0).normal(size=(shop.n_items, 4))
    one = evaluate({"pop": fitted}, split, item_vectors=vectors, batch_size=3, fitted=True, progress=True)
    whole = evaluate({"pop": create_model("popularity")}, split, item_vectors=vectors, progress=False)
    assert one.models["pop"].fit_seconds == 0.0 and one.models["pop"].fitted_before
    for key, value in whole.models["pop"].metrics.items():
        assert one.models["pop"].metrics[key] == pytest.approx(value), key
    assert 0 < one.models["pop"].metrics["diversity@10"] <= 2
    other = create_model("popularity").fit(make_dataset([("a", "x", 0)]))
    with pytest.raises(ModelError, match="fitted on this split"):
        evaluate({"pop": other}, split, fitted=True, progress=False)


def test_to_dict_shape_and_round_trip(shop):
    split = leave_last_out(shop)
    result = evaluate({"pop": create_model("popularity")}, split, progress=False)
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert {"dataset", "protocol", "models"} <= set(d)
    assert d["dataset"] == "tiny" and d["protocol"] == "leave-last-out" and d["stage"] == "test"
    entry = d["models"]["pop"]
    assert {"metrics", "fit_seconds", "recommend_seconds"} <= set(entry)
    assert {"ndcg@10", "hr@10", "recall@20"} <= set(entry["metrics"])
    assert all(isinstance(v, float) for v in entry["metrics"].values())
    assert EvalResult.from_dict(d).to_dict() == d


def test_format_table_and_write_report(shop, tmp_path):
    split = leave_last_out(shop)
    models = {"pop": create_model("popularity"), "oracle": Oracle(split.truth)}
    result = evaluate(models, split, progress=False)
    text = format_table(result)
    assert text.splitlines()[0].split()[:3] == ["model", "ndcg@10", "hr@10"]
    assert "oracle" in text and "1.0000" in text
    markdown = format_table(result, metrics=("hr@10",), fmt="markdown")
    assert "| oracle | **1.0000** |" in markdown
    with pytest.raises(ValueError, match="fmt"):
        format_table(result, fmt="html")
    paths = write_report(result, tmp_path / "run")
    assert json.loads(paths["json"].read_text())["models"]["oracle"]["metrics"]["hr@10"] == 1.0
    png = paths["png"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    assert "| pop |" in paths["markdown"].read_text()
