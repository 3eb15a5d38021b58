"""The request's platform as a ranking feature: only when the training events carry platforms.

A planted shop: app shoppers end up buying among items ``a*``, web shoppers among ``w*``, while
their earlier events are spread over both; only the platform tells the two apart.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from shoprec.data import Dataset, dataset_from_frames
from shoprec.eval import leave_last_out
from shoprec.pipeline.context import contexts_from_dataset
from shoprec.pipeline.features import MIN_PLATFORM_EVENTS, PAIR_FEATURES
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.ranking import ndcg_at
from shoprec.pipeline.sources import PopularitySource

APP = [f"a{i}" for i in range(10)]
WEB = [f"w{i}" for i in range(10)]


def planted_shop(n_users: int = 300, seed: int = 0, platforms: bool = True) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        platform = "app" if u % 2 else "web"
        mine = APP if platform == "app" else WEB
        picks = [*rng.choice(APP + WEB, 3), *rng.choice(mine, 3)]
        rows += [(f"u{u}", str(item), 1000 + 10 * t, "purchase", platform) for t, item in enumerate(picks)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "platform"])
    if not platforms:
        frame = frame.drop(columns=["platform"])
    items = pd.DataFrame({"item_id": APP + WEB, "title": APP + WEB, "category": "things"})
    return dataset_from_frames(items, frame, name="planted")


def test_dataset_keeps_platforms_trimmed_and_lower_cased(tmp_path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2"],
            "item_id": ["a", "b", "a"],
            "timestamp": [1, 2, 3],
            "platform": [" App", "", None],
        }
    )
    data = dataset_from_frames(pd.DataFrame({"item_id": ["a", "b"]}), frame)
    assert data.interactions["platform"].tolist()[0] == "app"
    assert data.interactions["platform"].isna().tolist() == [False, True, True]
    again = Dataset.load(data.save(tmp_path / "d"))
    assert again.interactions["platform"].tolist()[0] == "app"
    [u1, u2] = contexts_from_dataset(data, np.array([0, 1]))
    assert (u1.platform, u2.platform) == (None, None)  # u1's last event has none
    no_platform = dataset_from_frames(pd.DataFrame({"item_id": ["a"]}), frame.drop(columns="platform"))
    assert "platform" not in no_platform.interactions


def test_features_only_with_platforms_in_the_training_data() -> None:
    plain = Pipeline([PopularitySource("pop")], recall_k=20).fit(planted_shop(platforms=False))
    assert plain.features.names(("pop",))[2:] == list(PAIR_FEATURES)
    data = planted_shop()
    pipe = Pipeline([PopularitySource("pop")], recall_k=20).fit(data)
    names = pipe.features.names(("pop",))
    assert names[-3:] == ["platform=app", "platform=web", "platform_lift"]
    [ctx] = contexts_from_dataset(data, np.array([data.user_vocab.index(["u1"])[0]]))
    assert ctx.platform == "app"
    cand = pipe.candidates([ctx])[0]
    rows = pipe.features.build(ctx, cand)
    assert rows.shape == (len(cand), len(names))
    on_app = pipe.features.platform_lift[0]  # every item's lift on the app
    assert on_app[data.item_vocab.index(APP)].min() > 0 > on_app[data.item_vocab.index(WEB)].max()
    assert np.array_equal(rows[:, -1], on_app[cand.items])
    assert (rows[:, -3] == 1).all() and (rows[:, -2] == 0).all()
    for platform in (None, "kiosk"):  # none, or one the training data never had: no one-hot, no lift
        other = pipe.features.build(dataclasses.replace(ctx, platform=platform), cand)
        assert (other[:, -3:-1] == 0).all() and np.isnan(other[:, -1]).all()


def test_too_rare_a_platform_gets_no_feature() -> None:
    data = planted_shop(n_users=2 * (MIN_PLATFORM_EVENTS // 6))  # under the minimum events per platform
    pipe = Pipeline([PopularitySource("pop")], recall_k=20).fit(data)
    assert pipe.features.platforms == ()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_learned_ranker_uses_the_request_platform() -> None:
    data = planted_shop()
    valid = leave_last_out(data, stage="valid")
    pipe = Pipeline([PopularitySource("pop")], recall_k=20).fit(valid.train)
    pipe.fit_ranker(contexts_from_dataset(valid.train, valid.users), valid.truth)
    test = leave_last_out(data, stage="test")
    pipe.fit(test.train)
    contexts = contexts_from_dataset(test.train, test.users)

    def mean_ndcg(mode: str) -> float:
        recs = pipe.recommend(contexts, k=10, mode=mode, with_shares=False)
        hits = [np.isin(r.items, test.truth[c.user].indices).astype(float) for c, r in zip(contexts, recs, strict=True)]
        return float(np.mean([ndcg_at(-np.arange(10.0), h, 10, 1) for h in hits]))

    learned, plain = mean_ndcg("learned"), mean_ndcg("none")
    assert learned > plain + 0.05, (learned, plain)
    importance = pipe.ranker.importance()
    assert importance["platform_lift"] + importance["platform=app"] + importance["platform=web"] > 0.2, importance
    # the same shopper asking from the other platform gets the other platform's items first
    ctx = contexts[0]
    for platform, expected in (("app", APP), ("web", WEB)):
        [rec] = pipe.recommend([dataclasses.replace(ctx, platform=platform)], k=5, mode="learned", with_shares=False)
        top = data.item_vocab.ids(rec.items)
        assert sum(i in expected for i in top) >= 4, (platform, top)
