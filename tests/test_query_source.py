"""The "recent queries" recall source: a shopper's searches shape the next home feed.

A tiny shop of camping, kitchen and phone items, encoded with the packaged int8 MiniLM; the
shopper who searched for "tents" gets camping items. Also: no queries cost nothing (no encoding,
no index), recent queries weigh more, seen items are never proposed, query vectors are cached
across requests, the source is named in a TOML config, and a leakage test: queries dated at or
after a context's ``now`` never reach it, through ``contexts_from_dataset`` and through a split.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoprec.data import dataset_from_frames
from shoprec.errors import ConfigError
from shoprec.eval import leave_last_out
from shoprec.pipeline.base import Resources
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.config import build_pipeline, build_source, config_from_dict, load_config
from shoprec.pipeline.context import RECENT_QUERIES, UserContext, contexts_from_dataset
from shoprec.pipeline.explain_text import source_phrase
from shoprec.pipeline.querysource import QuerySource, recent_queries

CATALOG = [
    ("t1", "2-person dome tent, waterproof", "Outdoors > Camping > Tents"),
    ("t2", "family camping tent for 6 people", "Outdoors > Camping > Tents"),
    ("t3", "backpacking tent ultralight", "Outdoors > Camping > Tents"),
    ("c1", "camping sleeping bag, 3 season", "Outdoors > Camping > Sleeping"),
    ("c2", "portable camping stove with gas canister", "Outdoors > Camping > Cooking"),
    ("k1", "ceramic coffee mug 350 ml", "Home > Kitchen > Mugs"),
    ("k2", "stainless steel coffee mug with lid", "Home > Kitchen > Mugs"),
    ("k3", "non-stick frying pan 28 cm", "Home > Kitchen > Pans"),
    ("k4", "cast iron skillet", "Home > Kitchen > Pans"),
    ("e1", "silicone phone case for iPhone", "Electronics > Phones > Cases"),
    ("e2", "USB-C fast charger 30W", "Electronics > Phones > Chargers"),
    ("e3", "wireless earbuds with charging case", "Electronics > Audio"),
]
DEFAULT_PIPELINE = Path(__file__).resolve().parents[1] / "src" / "shoprec" / "service" / "default_pipeline.toml"
CAMPING = {"t1", "t2", "t3", "c1", "c2"}
DAY = 86_400


def _shop(queries: pd.DataFrame | None = None):
    """Four shoppers who bought kitchen and phone items; every item has an event."""
    users = ["u0", "u1", "u2", "u3"]
    events = []
    ids = [c[0] for c in CATALOG]
    for n, item in enumerate(ids):
        events.append((users[n % 4], item, 1000 + n * DAY))
    for n, user in enumerate(users):  # a few more kitchen and phone events each
        for j, item in enumerate(("k1", "k3", "e1", "e2")[n:] + ("k2",)):
            events.append((user, item, 1000 + (20 + n + j) * DAY))
    inter = pd.DataFrame(events, columns=["user_id", "item_id", "timestamp"])
    catalog = pd.DataFrame({"item_id": ids, "title": [c[1] for c in CATALOG], "category": [c[2] for c in CATALOG]})
    return dataset_from_frames(catalog, inter, queries=queries, name="campers")


@pytest.fixture(scope="module")
def encoder():
    from shoprec.text.encoders import load_encoder

    return load_encoder("minilm-int8")


class Counting:
    """An encoder that counts the texts it is asked to encode."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dim, self.texts = inner, inner.name, inner.dim, []

    def encode(self, texts, batch_size: int = 64, progress=None):
        self.texts.extend(texts)
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


@pytest.fixture(scope="module")
def shop():
    return _shop()


@pytest.fixture(scope="module")
def vectors(shop, encoder):
    return encoder.encode(shop.items["title"].astype(str).tolist())


def _source(shop, vectors, encoder, **settings) -> QuerySource:
    source = QuerySource("queries", **settings)
    source.fit(shop, Resources(ItemInfo.from_dataset(shop), vectors, encoder=encoder))
    return source


def _context(shop, user: str, queries: tuple[str, ...], history: tuple[str, ...] = ()) -> UserContext:
    items = shop.item_vocab.index(list(history))
    return UserContext(
        shop.user_vocab.index([user])[0], items, np.arange(len(items), dtype=np.int64), 10**9, queries=queries
    )


def _default_with_queries():
    """The service's default pipeline, which holds the recent-queries source."""
    config = load_config(DEFAULT_PIPELINE)
    assert "queries" in [source.get("type") for source in config.sources]
    return config


def _ids(shop, items: np.ndarray) -> list[str]:
    return shop.item_vocab.ids(items).tolist()


def test_a_shopper_who_searched_tents_gets_camping_items(shop, vectors, encoder):
    source = _source(shop, vectors, encoder)
    [(items, scores)] = source.recall([_context(shop, "u0", ("tents",))], k=5)
    top = _ids(shop, items)
    assert set(top) == CAMPING, top  # the five camping items, before any mug, pan or charger
    assert {top[0], top[1]} <= {"t1", "t2", "t3"}, top
    assert np.all(np.diff(scores) <= 0) and scores.dtype == np.float32 and items.dtype == np.int64
    assert source.matched_queries(_context(shop, "u0", ("tents",)), items[:1]) == ["tents"]


def test_the_home_feed_after_a_search_for_tents_leads_with_camping(shop, vectors, encoder):
    """Through a pipeline from a TOML-style config: the same shopper, before and after searching."""
    config = config_from_dict(
        {
            "pipeline": {"k": 4, "recall_k": 20, "rank": "fusion"},
            "source": [{"name": "trending", "type": "popularity"}, {"name": "searched", "type": "queries"}],
            "fusion": {"weights": {"searched": 3.0, "trending": 1.0}},
        }
    )
    pipe = build_pipeline(config).fit(shop, vectors)
    pipe.resources.encoder = encoder  # set after fitting: the source reads it per request
    before = _context(shop, "u1", ())
    after = _context(shop, "u1", ("tents",))
    [feed_before, feed_after] = pipe.recommend([before, after])
    assert not set(_ids(shop, feed_before.items)) & CAMPING
    assert set(_ids(shop, feed_after.items)[:3]) <= CAMPING
    searched = pipe.source_names.index("searched")
    assert feed_after.source_shares[0, searched] > 0  # the search's share of the first item is shown


def test_no_queries_return_nothing_and_encode_nothing(shop, vectors, encoder):
    counting = Counting(encoder)
    source = _source(shop, vectors, counting)
    out = source.recall([_context(shop, "u0", ()), _context(shop, "u1", ("  ", "")), _context(shop, "u2", ())], k=10)
    assert [len(items) for items, _ in out] == [0, 0, 0]
    assert counting.texts == [] and source._index is None  # no encoding, no index built
    assert source.stats["requests_with_queries"] == 0
    # the same through the default pipeline with the source added: a request without queries encodes nothing
    pipe = build_pipeline(_default_with_queries()).fit(shop, vectors)
    pipe.resources.encoder = counting
    pipe.recommend([_context(shop, "u3", ())], mode="fusion")
    assert counting.texts == []
    pipe.recommend([_context(shop, "u3", ("tents",))], mode="fusion")
    assert counting.texts == ["tents"]  # the default pipeline does use queries when there are some


def test_without_an_encoder_the_source_is_silent_and_counts_it(shop, vectors):
    source = _source(shop, vectors, None)
    assert source.recall([_context(shop, "u0", ("tents",))], k=5)[0][0].size == 0
    assert source.stats["silent_no_encoder"] == 1
    no_vectors = QuerySource("queries")
    no_vectors.fit(shop, Resources(ItemInfo.from_dataset(shop), None))
    assert no_vectors.recall([_context(shop, "u0", ("tents",))], k=5)[0][0].size == 0


def test_an_encoder_of_another_dimension_is_a_clear_error(shop, vectors, encoder):
    source = _source(shop, vectors[:, :100], encoder)
    with pytest.raises(ConfigError, match="384-d vectors, the item vectors are 100-d"):
        source.recall([_context(shop, "u0", ("tents",))], k=5)


def test_recent_queries_weigh_more_and_each_query_finds_its_own_items(shop, vectors, encoder):
    source = _source(shop, vectors, encoder, decay=0.5)
    [(items, _)] = source.recall([_context(shop, "u0", ("tents", "coffee mug"))], k=6)
    top = _ids(shop, items)
    assert set(top[:2]) == {"k1", "k2"}, top  # the most recent search leads
    assert {"t1", "t2", "t3"} & set(top), top  # the older one still finds tents (a max, not a blend)
    texts = source.matched_queries(_context(shop, "u0", ("tents", "coffee mug")), items)
    assert texts[0] == "coffee mug" and "tents" in texts
    [(flipped, _)] = source.recall([_context(shop, "u0", ("coffee mug", "tents"))], k=6)
    assert set(_ids(shop, flipped)[:2]) <= {"t1", "t2", "t3"}


def test_seen_items_are_never_proposed(shop, vectors, encoder):
    source = _source(shop, vectors, encoder)
    [(items, _)] = source.recall([_context(shop, "u0", ("tents",), history=("t1", "t2", "k1"))], k=12)
    assert not {"t1", "t2", "k1"} & set(_ids(shop, items)) and "t3" in _ids(shop, items)
    source.exclude_seen = False
    [(items, _)] = source.recall([_context(shop, "u0", ("tents",), history=("t1", "t2"))], k=3)
    assert {"t1", "t2"} <= set(_ids(shop, items))


def test_query_vectors_are_cached_across_requests(shop, vectors, encoder):
    counting = Counting(encoder)
    source = _source(shop, vectors, counting, cache=2)
    batch = [_context(shop, "u0", ("tents", "stove")), _context(shop, "u1", ("tents",))]
    first = source.recall(batch, k=5)
    assert sorted(counting.texts) == ["stove", "tents"]  # a text shared by two shoppers: encoded once
    again = source.recall(batch, k=5)
    assert len(counting.texts) == 2 and source.stats["cache_hits"] == 3
    for (a, sa), (b, sb) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sa, sb)
    source.recall([_context(shop, "u0", ("stove", "tents", "mug"))], k=5)
    assert counting.texts[2:] == ["mug"]  # only the new query is encoded
    assert len(source._cache) == 2  # bounded: the least recently used vector went


def test_sources_whose_encoders_share_a_cache_key_encode_a_query_once(shop, vectors, encoder):
    """Two served versions of one shop hold two sources and two encoder handles for one model: the
    second version's source takes the first one's query vectors (no second encoding); an encoder
    without a key keeps its own cache."""
    first, second, plain = Counting(encoder), Counting(encoder), Counting(encoder)
    first.cache_key = second.cache_key = ("test-shared", uuid.uuid4().hex)
    context = [_context(shop, "u0", ("tents", "stove"))]
    a = _source(shop, vectors, first).recall(context, k=5)
    b = _source(shop, vectors, second).recall(context, k=5)
    assert sorted(first.texts) == ["stove", "tents"] and second.texts == []
    np.testing.assert_array_equal(a[0][0], b[0][0])
    _source(shop, vectors, plain).recall(context, k=5)
    assert sorted(plain.texts) == ["stove", "tents"]


def test_recent_queries_are_cleaned_deduplicated_and_most_recent_first():
    assert recent_queries(("tents", " mug  lid ", "", "tents", "x" * 300), 3) == ["x" * 256, "tents", "mug lid"]
    assert recent_queries(("a", "b", "c"), 1) == ["c"]
    assert recent_queries((), 5) == []


def test_the_source_type_is_named_in_a_config_and_checked():
    source = build_source({"name": "searched", "type": "queries", "recent": 3, "decay": 0.6})
    assert isinstance(source, QuerySource) and source.recent == 3 and source.decay == 0.6
    with pytest.raises(ConfigError, match="unknown key 'window_days'"):
        build_source({"name": "searched", "type": "queries", "window_days": 7})
    with pytest.raises(ConfigError, match="decay must lie in"):
        build_source({"name": "searched", "type": "queries", "decay": 0})
    with pytest.raises(ConfigError, match="recent must be a whole number"):
        build_source({"name": "searched", "type": "queries", "recent": 0})
    assert source_phrase("searched") == "your recent searches" and source_phrase("queries", "zh") == "您最近的搜索"


# ---------------------------------------------------------------------- leakage
def _planted_queries() -> pd.DataFrame:
    """Each shopper searches twice before t = 5 days and once, for tents, at and after 30 days."""
    rows = []
    for n, user in enumerate(["u0", "u1", "u2", "u3"]):
        rows += [(user, "coffee mug", 1000 + n), (user, "phone case", 1000 + 4 * DAY + n)]
        rows += [(user, "tents", 1000 + 30 * DAY), (user, "tents later", 1000 + 40 * DAY + n)]
    rows += [(None, "anonymous", 1000), ("stranger", "not a shopper", 1000)]
    frame = pd.DataFrame(rows, columns=["user_id", "query", "timestamp"])
    undated = pd.DataFrame({"user_id": ["u0"], "query": ["undated"], "timestamp": [pd.NA]})
    return pd.concat([frame, undated], ignore_index=True)


def test_leakage_contexts_hold_only_queries_dated_before_now():
    shop = _shop(_planted_queries())
    users = np.arange(shop.n_users)
    at_cut = contexts_from_dataset(shop, users, now=1000 + 30 * DAY)
    assert {c.queries for c in at_cut} == {("coffee mug", "phone case")}  # the query at `now` is not before it
    later = contexts_from_dataset(shop, users, now=1000 + 30 * DAY + 1)
    assert {c.queries for c in later} == {("coffee mug", "phone case", "tents")}
    assert contexts_from_dataset(shop, users, now=1000)[0].queries == ()
    assert contexts_from_dataset(shop, np.array([-1, 99]))[0].queries == ()
    newest = contexts_from_dataset(shop, users)  # default now: a second after the newest event
    assert all("tents later" not in c.queries and "undated" not in c.queries for c in newest)


def test_leakage_a_split_never_shows_queries_from_the_held_out_time(encoder):
    """A query naming the held-out item, dated at each user's cut, is in the data; the split's
    training contexts must not hold it, and the source must answer as without it."""
    clean = _shop()
    split = leave_last_out(clean, stage="test", min_events=3)
    rows = []
    for u in split.users.tolist():
        user = clean.user_vocab.ids([u])[0]
        held_out = split.truth[u].indices[0]
        title = str(clean.items["title"].iloc[held_out])
        frame = clean.interactions
        cut = int(frame.loc[(frame["user"] == u) & (frame["item"] == held_out), "timestamp"].min())
        rows += [(user, "coffee mug", 500), (user, title, cut), (user, title, cut + DAY)]
    planted = _shop(pd.DataFrame(rows, columns=["user_id", "query", "timestamp"]))
    planted_split = leave_last_out(planted, stage="test", min_events=3)
    np.testing.assert_array_equal(split.users, planted_split.users)
    contexts = contexts_from_dataset(planted_split.train, planted_split.users)
    assert contexts and all(c.queries == ("coffee mug",) for c in contexts)
    vectors = encoder.encode(planted.items["title"].astype(str).tolist())
    source = _source(planted_split.train, vectors, encoder)
    answers = source.recall(contexts, k=5)
    bare = [UserContext(c.user, c.history, c.times, c.now, c.events, ("coffee mug",)) for c in contexts]
    for (a, sa), (b, sb) in zip(answers, source.recall(bare, k=5), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sa, sb)


def test_contexts_keep_the_last_queries_only():
    rows = [("u0", f"query {n}", 100 + n) for n in range(RECENT_QUERIES + 5)]
    shop = _shop(pd.DataFrame(rows, columns=["user_id", "query", "timestamp"]))
    [ctx] = contexts_from_dataset(shop, shop.user_vocab.index(["u0"]))
    assert ctx.queries == tuple(f"query {n}" for n in range(5, RECENT_QUERIES + 5))
