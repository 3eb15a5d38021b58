"""Nothing from after a split's cutoff reaches a model, a feature or a profile.

For each protocol and stage the same small shop is built twice: clean (no review or query dated at
or after the cutoff that applies to it), and with the answer planted in data the split must discard:

- for every evaluated user, a search query whose text is a held-out item's title and which clicked
  it, a five-star review of that item, and a query without a timestamp, all dated at the user's cut
  (leave-last-out: their held-out event's time; temporal: the cutoff, the validation cutoff for the
  validation stage); under temporal splits also anonymous queries and reviews by strangers;
- on every event the split holds out, a unit price ten times higher and a later timestamp (within
  the protocol's rules, so the held-out answer does not change), so that catalogue columns derived
  from events (first sale, median price; declared as :attr:`Dataset.derived`, as the Online Retail
  adapter does) would change if taken from the whole file.

Every registered model (so a future model is covered without editing this file) is fitted on both
training sets with tiny settings and must score every evaluated user identically; so must the
pipeline's features over the candidates of every source, and the user profiles.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from shoprec.data import Dataset
from shoprec.data.adapters.online_retail import EVENT_DERIVED
from shoprec.data.demo import generate_demo_shop
from shoprec.data.derived import NO_CUT, TimeCut
from shoprec.data.frames import dataset_from_frames
from shoprec.eval import leave_last_out, temporal_split
from shoprec.eval.splits import Split
from shoprec.models import create_model
from shoprec.models.registry import get_model_class, model_names
from shoprec.timeunits import DAY

PROTOCOLS = {
    "leave-last-out/test": lambda ds: leave_last_out(ds, stage="test"),
    "leave-last-out/valid": lambda ds: leave_last_out(ds, stage="valid"),
    "temporal/repeat/test": lambda ds: temporal_split(ds, test_days=7, variant="repeat"),
    "temporal/discovery/test": lambda ds: temporal_split(ds, test_days=7, variant="discovery"),
    "temporal/repeat/valid": lambda ds: temporal_split(ds, test_days=7, variant="repeat", stage="valid"),
}
ENCODER = "minilm-int8"
TINY = {
    "epochs": 2,
    "embedding_size": 16,
    "valid_users": 0,
    "threads": 1,
    "num_threads": 1,
    "seed": 1,
    "negatives": 64,
    "max_len": 20,
    "encoder": ENCODER,
}
"""Settings applied to every model that has them: quick fits (the scores need not be good, only
equal), and one small encoder for every text model."""


# ---------------------------------------------------------------------------- the two shops
def _raw_tables(seed: int = 3) -> dict[str, pd.DataFrame]:
    """A small demo shop whose catalogue has no launch date or price: both are derived from the
    events (each event carries its own unit price, varying around the list price)."""
    shop = generate_demo_shop(seed=seed, n_items=150, n_users=90, days=40)
    items = shop.items.drop(columns=["created_at", "price"])
    price = shop.items.set_index("item_id")["price"]
    events = shop.interactions.reset_index(drop=True)
    wobble = 1.0 + 0.05 * (np.arange(len(events)) % 5 - 2)
    events = events.assign(price=price.reindex(events["item_id"]).to_numpy() * wobble, position=np.arange(len(events)))
    return {"items": items, "interactions": events, "reviews": shop.reviews, "queries": shop.queries}


def _build(tables: dict[str, pd.DataFrame]) -> Dataset:
    return dataset_from_frames(
        tables["items"], tables["interactions"], tables["reviews"], tables["queries"], derived=EVENT_DERIVED
    )


def _as_raw(ds: Dataset) -> pd.DataFrame:
    """The dataset's events back as a raw table, in the dataset's row order (position = row)."""
    frame = ds.interactions
    return pd.DataFrame(
        {
            "user_id": np.asarray(ds.user_vocab.ids(), dtype=object)[frame["user"].to_numpy()],
            "item_id": np.asarray(ds.item_vocab.ids(), dtype=object)[frame["item"].to_numpy()],
            "event": frame["event"].astype(str).to_numpy(),
            "value": frame["value"].to_numpy(),
            "timestamp": frame["timestamp"].to_numpy(),
            "session_id": frame["session_id"].to_numpy(),
            "quantity": frame["quantity"].to_numpy(),
            "price": frame["price"].to_numpy(),
            "position": np.arange(len(frame), dtype=np.float64),
        }
    )


def _cuts(ds: Dataset, split: Split) -> np.ndarray:
    """Each user's cut (int64 unix seconds, NO_CUT = none) as the protocol defines it."""
    if split.protocol == "temporal":
        return np.full(ds.n_users, split.info["cutoff"], dtype=np.int64)
    frame, cut = ds.interactions, np.full(ds.n_users, NO_CUT, dtype=np.int64)
    held = _held_rows(ds, split)
    np.minimum.at(cut, frame["user"].to_numpy()[held], frame["timestamp"].to_numpy()[held])
    return cut


def _held_rows(ds: Dataset, split: Split) -> np.ndarray:
    """Mask of the events the split leaves out of training."""
    if split.protocol == "temporal":
        return ds.interactions["timestamp"].to_numpy() >= split.info["cutoff"]
    # leave-last-out keeps a prefix of each user's sequence: the rest is held out
    lengths = np.bincount(split.train.interactions["user"], minlength=ds.n_users)
    rank = ds.interactions.groupby("user").cumcount().to_numpy()
    return rank >= lengths[ds.interactions["user"].to_numpy()]


def _clean_side(frame: pd.DataFrame, ds: Dataset, cuts: np.ndarray) -> pd.DataFrame:
    """Side-table rows dated before the cut of their user (anonymous rows: before every cut)."""
    users = np.asarray(ds.user_vocab.index(frame["user_id"].fillna("").astype(str)), dtype=np.int64)
    limit = np.where(users >= 0, cuts[np.maximum(users, 0)], cuts.min())
    times = frame["timestamp"].to_numpy(dtype=np.float64, na_value=np.nan)
    return frame[~np.isnan(times) & (times < limit)].drop(columns="item").reset_index(drop=True)


def _moved_times(ds: Dataset, split: Split, held: np.ndarray) -> np.ndarray:
    """Timestamps with held-out events moved later without changing the held-out answer."""
    times = ds.interactions["timestamp"].to_numpy().copy()
    newest = int(times.max())
    if split.protocol == "leave-last-out":
        times[held] += 30 * DAY  # a user's held-out events are the tail of their sequence
    elif split.stage == "test":
        times[held] = newest  # still in the test window, whose end (the newest event) stays put
    else:
        after_window = times >= split.info["window_end"]
        times[after_window] = newest  # the validation window itself must not move
    return times


def _plant(ds: Dataset, split: Split, cuts: np.ndarray, tables: dict) -> dict[str, pd.DataFrame]:
    """The clean tables plus the planted answer (see the module docstring)."""
    held = _held_rows(ds, split)
    events = _as_raw(ds).assign(timestamp=_moved_times(ds, split, held))
    events.loc[held, "price"] *= 10.0
    moved = _cuts(_build({**tables, "interactions": events}), split) if split.protocol != "temporal" else cuts
    users, items = split.truth.nonzero()
    first = np.unique(users, return_index=True)[1]
    users, items = users[first], items[first]
    user_ids = np.asarray(ds.user_vocab.ids(), dtype=object)[users]
    item_ids = np.asarray(ds.item_vocab.ids(), dtype=object)[items]
    when = moved[users]
    titles = ds.items["title"].astype(str).to_numpy()[items]
    queries = [
        pd.DataFrame({"user_id": user_ids, "query": titles, "item_id": item_ids, "timestamp": when}),
        pd.DataFrame({"user_id": user_ids, "query": titles, "item_id": item_ids, "timestamp": pd.NA}),
    ]
    reviews = [
        pd.DataFrame({"user_id": user_ids, "item_id": item_ids, "rating": 5.0, "text": "best ever", "timestamp": when})
    ]
    if split.protocol == "temporal":  # no user, or a user with no events: the global cutoff still applies
        queries.append(pd.DataFrame({"user_id": pd.NA, "query": titles, "item_id": item_ids, "timestamp": when}))
        reviews.append(
            pd.DataFrame({"user_id": "stranger", "item_id": item_ids, "rating": 5.0, "text": "wow", "timestamp": when})
        )
    return {
        **tables,
        "interactions": events,
        "queries": pd.concat([tables["queries"], *queries], ignore_index=True),
        "reviews": pd.concat([tables["reviews"], *reviews], ignore_index=True),
    }


@dataclasses.dataclass
class Pair:
    """The same protocol on the clean shop and on the shop with the answer planted."""

    clean: Split
    planted: Split
    clean_data: Dataset
    planted_data: Dataset


@pytest.fixture(scope="module")
def shops() -> dict[str, Pair]:
    raw = _raw_tables()
    full = _build(raw)
    pairs = {}
    for name, make in PROTOCOLS.items():
        split = make(full)
        cuts = _cuts(full, split)
        tables = {
            **raw,
            "interactions": _as_raw(full),
            "queries": _clean_side(full.queries, full, cuts),
            "reviews": _clean_side(full.reviews, full, cuts),
        }
        clean = _build(tables)
        planted = _build(_plant(clean, make(clean), _cuts(clean, make(clean)), tables))
        pairs[name] = Pair(make(clean), make(planted), clean, planted)
    return pairs


@pytest.fixture(scope="module")
def vector_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("vectors"))


# ---------------------------------------------------------------------------- the guard
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_plant_asks_the_same_question_and_is_really_there(shops, protocol):
    pair = shops[protocol]
    clean, planted = pair.clean, pair.planted
    assert (clean.truth != planted.truth).nnz == 0 and len(clean.users) > 10
    n = len(clean.users)
    # the full planted shop holds the answer: queries and a review per evaluated user, and the
    # catalogue derived from all its events has other prices and first sales than the clean one
    assert len(pair.planted_data.queries) >= len(pair.clean_data.queries) + 2 * n
    assert len(pair.planted_data.reviews) >= len(pair.clean_data.reviews) + n
    assert not np.allclose(pair.planted_data.items["price"], pair.clean_data.items["price"], equal_nan=True)
    first_sale = [d.items["created_at"].fillna(-1).to_numpy() for d in (pair.planted_data, pair.clean_data)]
    assert (first_sale[0] != first_sale[1]).any()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_splits_remove_exactly_the_planted_rows(shops, protocol):
    clean, planted = shops[protocol].clean, shops[protocol].planted
    n = len(np.unique(planted.truth.nonzero()[0]))
    assert clean.info["queries_removed_after_cutoff"] == clean.info["reviews_removed_after_cutoff"] == 0
    extra = 2 if planted.protocol == "temporal" else 1  # temporal: also the anonymous and strangers' rows
    assert planted.info["queries_removed_after_cutoff"] == extra * n
    assert planted.info["reviews_removed_after_cutoff"] == extra * n
    assert planted.info["queries_removed_no_timestamp"] == n
    pd.testing.assert_frame_equal(clean.train.interactions, planted.train.interactions)
    pd.testing.assert_frame_equal(clean.train.items, planted.train.items)
    pd.testing.assert_frame_equal(clean.train.queries, planted.train.queries)
    pd.testing.assert_frame_equal(clean.train.reviews, planted.train.reviews)


def _tiny(name: str, cache: str) -> dict:
    fields = {f.name for f in dataclasses.fields(get_model_class(name).config_class)}
    return {k: v for k, v in {**TINY, "cache_dir": cache}.items() if k in fields}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", model_names())
def test_every_model_scores_the_same_without_the_plant(shops, protocol, name, vector_cache):
    clean, planted = shops[protocol].clean, shops[protocol].planted
    users = clean.users
    scores = [create_model(name, **_tiny(name, vector_cache)).fit(s.train).score(users) for s in (clean, planted)]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5, atol=1e-6, err_msg=f"{name} on {protocol}")


def _pipeline_features(split: Split, cache: str) -> list[np.ndarray]:
    from shoprec.models.textside import TextVectors
    from shoprec.pipeline.context import contexts_from_dataset
    from shoprec.pipeline.pipeline import Pipeline
    from shoprec.pipeline.sources import (
        BuyAgainSource,
        ItemToItemSource,
        ModelSource,
        NewArrivalsSource,
        PopularitySource,
    )

    sources = [
        ModelSource("ease", create_model("ease")),
        ItemToItemSource("i2i"),
        ItemToItemSource("i2i-text", similarity="text"),
        BuyAgainSource("buy-again"),
        PopularitySource("trending", window_days=7),
        NewArrivalsSource("new", days=60),
    ]
    vectors = TextVectors(ENCODER, cache).vectors(split.train)
    pipe = Pipeline(sources, recall_k=20, exclude_seen=split.exclude_seen).fit(split.train, vectors)
    contexts = contexts_from_dataset(split.train, split.users)
    candidates = pipe.candidates(contexts)
    return [pipe.features.build(ctx, cand) for ctx, cand in zip(contexts, candidates, strict=True)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pipeline_features_are_the_same_without_the_plant(shops, protocol, vector_cache):
    clean, planted = shops[protocol].clean, shops[protocol].planted
    a, b = _pipeline_features(clean, vector_cache), _pipeline_features(planted, vector_cache)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)  # NaN == NaN here; the item-age column is one of them


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_user_profiles_are_the_same_without_the_plant(shops, protocol, vector_cache):
    from shoprec.models.textside import TextVectors
    from shoprec.text.encoders import load_encoder
    from shoprec.text.profiles import UserProfiles

    encoder = load_encoder(ENCODER)
    built = []
    for split in (shops[protocol].clean, shops[protocol].planted):
        vectors = TextVectors(ENCODER, vector_cache).vectors(split.train)
        built.append(UserProfiles.build(split.train, vectors, encoder=encoder))
    np.testing.assert_allclose(built[0].vectors(), built[1].vectors(), rtol=1e-5, atol=1e-6)
    users = shops[protocol].clean.users
    for user in users[:20]:
        assert built[0].price_band(int(user)) == built[1].price_band(int(user))
        assert built[0].top_categories(int(user)) == built[1].top_categories(int(user))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cross_category_model_is_the_same_without_the_plant(shops, protocol, vector_cache):
    from shoprec.models.textside import TextVectors
    from shoprec.pipeline.crosscat import CrossCategory

    fitted = []
    for split in (shops[protocol].clean, shops[protocol].planted):
        vectors = TextVectors(ENCODER, vector_cache).vectors(split.train)
        categories = split.train.items["category"].astype(str).to_numpy()
        fitted.append(CrossCategory(mode="attention", epochs=2, seed=1).fit(split.train, vectors, categories))
    assert fitted[0].arrays.keys() == fitted[1].arrays.keys()
    for name in fitted[0].arrays:
        np.testing.assert_allclose(fitted[0].arrays[name], fitted[1].arrays[name], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- the cut's own rules
def test_rows_without_user_or_timestamp_follow_the_documented_rule(shops):
    ds = shops["leave-last-out/test"].planted_data
    frame = pd.DataFrame(
        {
            "user_id": [ds.user_vocab.ids()[0], ds.user_vocab.ids()[0], pd.NA, pd.NA, "nobody"],
            "timestamp": pd.array([5, pd.NA, 500, pd.NA, 500], dtype="Int64"),
        }
    )
    per_user = np.full(ds.n_users, NO_CUT, dtype=np.int64)
    per_user[0] = 100
    keep, counts = TimeCut(per_user=per_user).keep(frame, ds.user_vocab, "queries")
    # the user's own undated row goes; rows of no known user have no held-out time and stay
    assert keep.tolist() == [True, False, True, True, True]
    assert counts == {"queries_removed_after_cutoff": 0, "queries_removed_no_timestamp": 1, "queries_kept_no_user": 3}
    keep, counts = TimeCut(at=100).keep(frame, ds.user_vocab, "queries")
    assert keep.tolist() == [True, False, False, False, False]  # a global cutoff applies to every row
    assert counts == {"queries_removed_after_cutoff": 2, "queries_removed_no_timestamp": 2}


def test_derived_columns_are_saved_and_recomputed_by_every_subset(shops, tmp_path):
    ds = shops["temporal/repeat/test"].planted_data
    loaded = Dataset.load(ds.save(tmp_path / "shop"))
    assert loaded.derived == EVENT_DERIVED
    pd.testing.assert_frame_equal(loaded.items, ds.items)
    early = loaded.subset(loaded.interactions["timestamp"].to_numpy() < loaded.interactions["timestamp"].median())
    sold = np.bincount(early.interactions["item"], minlength=early.n_items) > 0
    first = early.interactions.groupby("item")["timestamp"].min()
    assert early.items["created_at"][sold].tolist() == first.tolist()
    assert early.items["created_at"][~sold].isna().all() and early.items["price"][~sold].isna().all()
