"""Explanations: occlusion is faithful, planted drivers are named, texts and heatmaps hold the facts,
and the optional LLM rephrasing sends only the facts and falls back to the template on any failure."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from shoprec.data.demo import generate_preset
from shoprec.errors import ConfigError, ModelError
from shoprec.models import create_model
from shoprec.models.itemgraph import ItemGraph
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext, contexts_from_dataset
from shoprec.pipeline.explain import CoPurchase, co_purchase_counts, explain, history_contributions
from shoprec.pipeline.explain_text import heatmap_data, plot_heatmap, render
from shoprec.pipeline.llm import LLMConfig, LLMExplainer, facts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def shop():
    return generate_preset("small")


@pytest.fixture(scope="module")
def ds(shop):
    return shop.to_dataset()


@pytest.fixture(scope="module")
def info(ds):
    return ItemInfo.from_dataset(ds)


@pytest.fixture(scope="module")
def cosine(ds) -> np.ndarray:
    """Item-item cosine of the user-item matrix, zero diagonal (a plain item-kNN)."""
    x = ds.matrix().astype(np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    sim = (x.T @ x).toarray() / np.outer(norms, norms)
    np.fill_diagonal(sim, 0.0)
    return sim


def sum_scorer(sim: np.ndarray):
    """score(history) = sum over history events of sim[h] (repeats count each time)."""

    def scorer(histories: list[np.ndarray]) -> np.ndarray:
        return np.stack([sim[np.asarray(h, dtype=np.int64)].sum(axis=0) for h in histories])

    return scorer


@pytest.fixture(scope="module")
def co_counts(ds) -> sp.csr_matrix:
    return co_purchase_counts(ds)


@pytest.fixture(scope="module")
def warm(ds, info, cosine, co_counts):
    """A real user's context, the top unseen items as candidates from two sources, and explanations."""
    context = contexts_from_dataset(ds, np.array([3]))[0]
    scores = sum_scorer(cosine)([context.history])[0]
    scores[context.history] = -np.inf
    top = np.argsort(-scores, kind="stable")[:6]
    candidates = Candidates.merge({"itemknn": (top[:4], scores[top[:4]]), "trending": (top[2:], np.arange(4.0, 0, -1))})
    candidates.score = np.linspace(1.0, 0.5, len(candidates)).astype(np.float32)
    shares = {"itemknn": np.full(len(candidates), 0.7), "trending": 0.3}
    out = explain(context, candidates, info, sum_scorer(cosine), shares, co_counts)
    return context, candidates, out


# ---------------------------------------------------------------------- occlusion
def test_contributions_equal_the_removed_terms_of_a_linear_scorer(rng):
    sim = rng.random((12, 12))
    history = np.array([1, 4, 1, 7, 9, 4, 2])
    items = np.array([0, 3, 11])
    out = history_contributions(history, items, sum_scorer(sim), max_history=3)
    assert out.history.tolist() == [2, 4, 9]  # the last three distinct items, most recent first
    counts = np.array([1, 2, 1])  # item 4 occurs twice: removing it removes both terms
    np.testing.assert_allclose(out.raw, sim[out.history][:, items] * counts[:, None])
    np.testing.assert_allclose(out.shares, out.raw / out.raw.sum(axis=0))


def test_shares_ignore_negative_contributions_and_are_zero_without_a_positive_part():
    sim = np.array([[0.0, 2.0, -1.0], [0.0, -3.0, -1.0], [0.0, 0.0, 0.0]])
    out = history_contributions(np.array([0, 1]), np.array([1, 2]), sum_scorer(sim))
    assert out.history.tolist() == [1, 0]
    np.testing.assert_allclose(out.shares, [[0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(out.raw, [[-3.0, -1.0], [2.0, -1.0]])


def test_bad_scorer_answers_are_errors():
    with pytest.raises(ModelError, match="returned None"):
        history_contributions(np.array([1]), np.array([0]), lambda hs: None)
    with pytest.raises(ModelError, match=r"\(1, n_items\)"):
        history_contributions(np.array([1]), np.array([0]), lambda hs: np.zeros((2, 5)))
    with pytest.raises(ModelError, match="0..4"):
        history_contributions(np.array([1]), np.array([7]), lambda hs: np.zeros((len(hs), 5)))


def test_histories_are_scored_as_if_alone_by_a_scorer_that_pads_batches(rng):
    """A scorer whose answer depends on the batch's longest history (as left-padding models do):
    contributions still equal the differences of each history scored alone."""
    sim = rng.random((9, 9))

    def padded(histories: list[np.ndarray]) -> np.ndarray:
        longest = max(len(h) for h in histories)
        return np.stack([sim[h].sum(axis=0) * (1 + 0.1 * (longest - len(h))) for h in histories])

    history = np.array([3, 5, 3, 8, 1])
    out = history_contributions(history, np.arange(9), padded)
    alone = [padded([history])[0] - padded([history[history != h]])[0] for h in out.history]
    np.testing.assert_allclose(out.raw, np.stack(alone))


def _check_fidelity(history: np.ndarray, items: np.ndarray, scorer, least: float = 0.0) -> int:
    """Removing each item's top-cited history item lowers its score; returns how many were checked."""
    out = history_contributions(history, items, scorer)
    full = np.asarray(scorer([history]), dtype=np.float64)[0]
    checked = 0
    for col, item in enumerate(items.tolist()):
        top = int(np.argmax(out.shares[:, col]))
        if out.raw[top, col] <= least:
            continue
        h = out.history[top]
        without = np.asarray(scorer([history[history != h]]), dtype=np.float64)[0]
        assert without[item] < full[item]
        checked += 1
    return checked


def test_fidelity_with_item_knn(ds, cosine):
    checked = 0
    for context in contexts_from_dataset(ds, np.arange(0, 200, 20)):
        scores = sum_scorer(cosine)([context.history])[0]
        scores[context.history] = -np.inf
        checked += _check_fidelity(context.history, np.argsort(-scores)[:10], sum_scorer(cosine))
    assert checked >= 90


def test_fidelity_with_sasrec(ds):
    torch.set_num_threads(1)
    small = dict(embedding_size=16, layers=1, heads=1, max_len=20, batch_size=512, valid_users=0)  # < 1 s
    model = create_model("sasrec", item_repr="id", epochs=3, threads=1, **small).fit(ds)
    checked = 0
    for context in contexts_from_dataset(ds, np.arange(5, 200, 40)):
        top = np.argsort(-model.score_histories([context.history])[0])[:8]
        checked += _check_fidelity(context.history, top, model.score_histories, least=1e-4)
    assert checked >= 20


# ---------------------------------------------------------------------- structured explanations
def test_co_purchase_counts_match_a_count_over_baskets(ds, co_counts):
    baskets = ds.baskets()
    expected = np.zeros((ds.n_items, ds.n_items), dtype=np.int64)
    for b in range(len(baskets)):
        members = np.unique(baskets.of(b))
        for i in members:
            for j in members:
                expected[i, j] += i != j
    assert expected.sum() > 0
    np.testing.assert_array_equal(co_counts.toarray(), expected)


def test_explanations_name_the_planted_complement(shop, ds, info, co_counts):
    """History = unrelated items then A; recommended B from A's complement group: the top driver is A."""
    graph = ItemGraph.build(ds, consecutive=False).edges("co_basket").toarray()
    index = {item_id: i for i, item_id in enumerate(info.item_id.tolist())}
    groups = [[index[x] for x in g] for g in shop.truth["complement_groups"]]
    grouped = {i for g in groups for i in g}
    rng = np.random.default_rng(5)
    pairs = 0
    for group in groups:
        for a in group:
            for b in (x for x in group if x != a):
                if co_counts[a, b] == 0:  # planted, but never bought together in this small shop
                    continue
                pool = [
                    i for i in range(ds.n_items) if i not in grouped and info.top[i] not in (info.top[a], info.top[b])
                ]
                history = np.r_[rng.choice(pool, 5, replace=False), a]
                context = UserContext(7, history, np.arange(len(history)), 100, np.array(["view"] * len(history)))
                candidates = Candidates.merge({"complements": (np.array([b]), np.array([1.0]))})
                (out,) = explain(context, candidates, info, sum_scorer(graph), co_counts=co_counts, scenario="cart")
                assert out.drivers[0].item_id == info.item_id[a]
                assert out.co_purchase[0].item == a and out.co_purchase[0].orders == co_counts[b, a] > 0
                assert info.title[a] in render(out) and info.title[a] in render(out, "zh")
                pairs += 1
    assert pairs >= 20


def test_explanation_facts(warm, info):
    context, candidates, out = warm
    assert [e.item for e in out] == candidates.items.tolist()
    for row, e in enumerate(out):
        assert e.item_id == info.item_id[e.item] and e.title == info.title[e.item]
        assert 0 < len(e.drivers) <= 5 and e.cited == 2
        shares = [d.share for d in e.drivers]
        assert shares == sorted(shares, reverse=True) and sum(shares) <= 1 + 1e-9
        assert {d.item for d in e.drivers} <= set(context.history.tolist())
        assert {s.name for s in e.sources} == set(candidates.proposed_by(row))
        assert [s.share for s in e.sources] == sorted((s.share for s in e.sources), reverse=True)
        for fact in e.sources:
            assert fact.rank == candidates.source_ranks[row, candidates.column(fact.name)] + 1
            assert fact.share == pytest.approx({"itemknn": 0.7, "trending": 0.3}[fact.name])
        cited = [e.item, *[d.item for d in e.drivers[:2]]]
        if e.shared.category:
            assert all(info.category[i].startswith(e.shared.category) for i in cited)
        if e.shared.brand:
            assert all(info.brand[i] == e.shared.brand for i in cited)
    assert json.loads(json.dumps([e.to_dict() for e in out]))[0]["drivers"][0]["title"] == out[0].drivers[0].title


def test_shared_facts_compare_attributes_and_stop_at_the_first_differing_level(ds, info):
    attributes = [json.loads(a) if a else {} for a in ds.items["attributes"]]
    leaf = info.category
    a, b = next((i, j) for i in range(len(leaf)) for j in range(i + 1, len(leaf)) if leaf[i] == leaf[j])
    context = UserContext(0, np.array([a]), np.array([1]), 2, np.array(["purchase"]))
    candidates = Candidates.merge({"content": (np.array([b]), np.array([1.0]))})
    sim = np.zeros((info.n_items, info.n_items))
    sim[a, b] = 1.0
    (out,) = explain(context, candidates, info, sum_scorer(sim), attributes=attributes)
    assert out.shared.category == leaf[a]
    assert out.shared.attributes == {k: str(v) for k, v in attributes[b].items() if attributes[a].get(k) == v}
    assert out.drivers[0].event == "purchase" and "bought" in render(out)


def test_bad_explain_inputs_are_errors(warm, info):
    context, candidates, _ = warm
    with pytest.raises(ModelError, match="'ease', which is not a candidate source"):
        explain(context, candidates, info, source_shares={"ease": 1.0})
    with pytest.raises(ModelError, match="one per row"):
        explain(context, candidates, info, source_shares={"trending": np.ones(2)})
    with pytest.raises(ModelError, match="co_counts must be"):
        explain(context, candidates, info, co_counts=sp.csr_matrix((3, 3)))


# ---------------------------------------------------------------------- texts
def test_templates_name_the_driver_its_share_and_the_sources(warm):
    _, _, out = warm
    e = out[0]
    top = e.drivers[0]
    percent = f"{round(top.share * 100)}%"
    en, zh = render(e, "en"), render(e, "zh")
    assert f"*{top.title}* ({percent})" in en and en.startswith("Because you ")
    assert f"「{top.title}」({percent})" in zh and zh.startswith("因为您")
    assert "items like the ones you chose" in en and "与您选过的商品相似的商品" in zh
    assert zh.count("。") <= 2


def test_templates_for_complements_cold_start_and_no_drivers(warm, info):
    context, candidates, out = warm
    e = copy.deepcopy(out[0])
    e.co_purchase = [CoPurchase(e.drivers[0].item, e.drivers[0].item_id, e.drivers[0].title, 14)]
    assert f"Bought together with *{e.drivers[0].title}* in 14 orders" in render(e)
    assert "在14个订单中一起购买" in render(e, "zh")
    cold = UserContext(-1, np.empty(0, np.int64), np.empty(0, np.int64), 0)
    (first, *_) = explain(cold, candidates, info, sum_scorer(np.zeros((info.n_items, info.n_items))))
    assert first.cold and not first.drivers
    assert render(first).startswith("Popular now") and "热门" in render(first, "zh")
    (plain, *_) = explain(context, candidates, info)  # no scorer: no drivers, sources only
    assert not plain.drivers and render(plain) == "Suggested by items like the ones you chose."
    empty = Candidates.merge({"x": (np.array([1]), np.array([1.0]))})
    (bare,) = explain(context, empty, info, source_shares={"x": 0.0})
    assert render(bare) == "Recommended for you." and render(bare, "zh") == "为您推荐。"


def test_unknown_language_is_a_clear_error(warm):
    with pytest.raises(ConfigError, match="en, zh"):
        render(warm[2][0], "fr")


def test_heatmap_data_and_png(warm, info, tmp_path):
    context, _, out = warm
    data = heatmap_data(context, out, info)
    rows = {d.item for e in out for d in e.drivers}
    values = np.array(data["values"])
    assert values.shape == (len(rows), len(out))
    assert {r["item"] for r in data["rows"]} == rows and [c["item"] for c in data["cols"]] == [e.item for e in out]
    row = [r["item"] for r in data["rows"]].index(out[0].drivers[0].item)
    assert values[row, 0] == pytest.approx(out[0].drivers[0].share, abs=1e-4)
    recent = context.recent(len(context.history)).tolist()
    assert [recent.index(r["item"]) for r in data["rows"]] == sorted(recent.index(i) for i in rows)
    assert all(len(r["label"]) <= 30 for r in data["rows"] + data["cols"])
    assert any(info.language[r["item"]] == "zh" for r in data["rows"] + data["cols"])  # CJK labels drawn
    json.dumps(data)
    path = plot_heatmap(data, tmp_path / "out" / "why.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000
    cold = UserContext(-1, np.empty(0, np.int64), np.empty(0, np.int64), 0)
    empty = heatmap_data(cold, [], info)
    assert empty["values"] == [] and plot_heatmap(empty, tmp_path / "empty.png").read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------------- LLM rephrasing
# The endpoint is a local fake http.server: no LLM service is reachable from the test machine.
class FakeLLM(BaseHTTPRequestHandler):
    mode = "ok"
    delay = 0.0
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        time.sleep(self.delay)
        answer = {
            "ok": json.dumps({"choices": [{"message": {"role": "assistant", "content": " Rephrased facts. "}}]}),
            "empty": json.dumps({"choices": [{"message": {"content": "  "}}]}),
            "garbage": "<html>not json",
            "error": json.dumps({"error": "overloaded"}),
        }[self.mode]
        try:
            self.send_response(500 if self.mode == "error" else 200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer.encode())
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_llm():
    """Start a fake endpoint with a handler mode; yields a function mode, delay -> base_url."""
    servers = []

    def start(mode: str = "ok", delay: float = 0.0) -> str:
        handler = type("Handler", (FakeLLM,), {"mode": mode, "delay": delay, "requests": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append((server, handler))
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start, servers
    for server, _ in servers:
        server.shutdown()
        server.server_close()


def test_llm_is_off_by_default_and_makes_no_call(warm, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network used while rephrasing is off")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    e = warm[2][0]
    explainer = LLMExplainer()
    assert explainer.rephrase(e, "zh") == (render(e, "zh"), False)
    assert explainer.outcomes["off"] == 1


def test_llm_gets_only_the_facts_and_its_answer_is_used(warm, info, cosine, co_counts, fake_llm, monkeypatch):
    start, servers = fake_llm
    base, candidates, _ = warm
    context = UserContext(987654, base.history, base.times, base.now, base.events)
    e = explain(context, candidates, info, sum_scorer(cosine), {"itemknn": 0.6}, co_counts)[0]
    monkeypatch.setenv("SHOPREC_TEST_LLM_KEY", "sk-test")
    explainer = LLMExplainer(LLMConfig(base_url=start("ok"), model="tiny", api_key_env="SHOPREC_TEST_LLM_KEY"))
    assert explainer.rephrase(e, "en") == ("Rephrased facts.", True)
    (request,) = servers[0][1].requests
    assert request["path"] == "/v1/chat/completions" and request["headers"]["Authorization"] == "Bearer sk-test"
    payload = json.loads(request["body"])
    assert payload["model"] == "tiny" and [m["role"] for m in payload["messages"]] == ["system", "user"]
    assert "only" in payload["messages"][0]["content"] and "English" in payload["messages"][0]["content"]
    user = json.loads(payload["messages"][1]["content"])
    assert user == facts(e, "en")
    assert [d["title"] for d in user["because_of"]] == [d.title for d in e.drivers[: e.cited]]
    body = request["body"].decode()
    cited = {d.title for d in e.drivers[: e.cited]} | {c.title for c in e.co_purchase[:1]}
    for item in set(context.history.tolist()):
        assert info.title[item] in cited or info.title[item] not in body  # no history beyond the cited drivers
        assert info.item_id[item] not in body  # no ids
    assert "987654" not in body and e.item_id not in body  # no user id, no item ids


@pytest.fixture
def waits(monkeypatch) -> list[float | None]:
    """How long each rephrase was prepared to wait for its request (None: for ever). The deadline
    is what keeps a slow endpoint from holding a feed; checking it instead of the wall clock makes
    the test independent of how busy the machine is."""
    recorded: list[float | None] = []

    class RecordedThread(threading.Thread):
        def join(self, timeout: float | None = None) -> None:
            recorded.append(timeout)
            super().join(timeout)

    monkeypatch.setattr("shoprec.pipeline.llm.threading", types.SimpleNamespace(Thread=RecordedThread))
    return recorded


# A generous deadline where the answer is immediate, so a busy machine cannot turn it into a timeout.
@pytest.mark.parametrize(
    "mode, delay, timeout_s, outcome",
    [
        ("ok", 1.5, 0.5, "timeout"),  # the answer would come after the deadline
        ("error", 0.0, 5.0, "http_error"),
        ("garbage", 0.0, 5.0, "malformed"),
        ("empty", 0.0, 5.0, "empty"),
    ],
)
def test_llm_failures_fall_back_to_the_template_in_time(warm, fake_llm, waits, mode, delay, timeout_s, outcome):
    start, _ = fake_llm
    e = warm[2][0]
    explainer = LLMExplainer(LLMConfig(base_url=start(mode, delay), timeout_s=timeout_s))
    assert explainer.rephrase(e, "zh") == (render(e, "zh"), False)
    assert waits == [pytest.approx(timeout_s + 0.1)]  # one request, waited for at most its deadline
    assert explainer.outcomes == {outcome: 1}


def test_llm_connection_refused_falls_back(warm, waits):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    explainer = LLMExplainer(LLMConfig(base_url=f"http://127.0.0.1:{port}", timeout_s=5.0))
    assert explainer.rephrase(warm[2][0]) == (render(warm[2][0]), False)
    assert waits == [pytest.approx(5.1)] and explainer.outcomes == {"connection_error": 1}


def test_llm_config_errors(warm):
    with pytest.raises(ConfigError, match="http://"):
        LLMConfig(base_url="localhost:8000")
    with pytest.raises(ConfigError, match="en, zh"):
        LLMExplainer().rephrase(warm[2][0], "de")
