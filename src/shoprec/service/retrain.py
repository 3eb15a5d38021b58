"""One retrain: train a candidate from the store, judge it offline, publish it as a challenger.

:func:`retrain_once` does, in order:

1. Finds the serving version (the plan's pinned version, else its arm with the largest share, else
   the newest on disk) and pins it when no plan is set, so the new folder is not served by accident.
2. Builds the training set with :func:`~shoprec.service.trainstore.dataset_from_store`. Nothing new
   since the newest version: records ``no-new-data`` and stops.
3. **Guard.** The most recent window (events after ``newest - window_seconds``, and after the
   serving version's newest event, so the serving version never saw them) is held out. The candidate
   recipe (the serving version's pipeline config and encoder) is trained on everything before it, and
   both it and the serving version rank the whole catalogue for the window's users, each from the
   same pre-window history and at the same time (full-catalogue NDCG@10 and recall@20, items the user
   had before excluded). Worse than the serving version's NDCG@10 by more than ``tolerance``
   (relative: ``candidate < serving * (1 - tolerance)``) -> rejected: that guard candidate is kept as
   ``vNNNN.rejected`` with the evidence in its manifest, never listed or served. When no event is newer
   than the serving version's data (only catalog changes or forgotten users since), there is nothing
   to judge on: the candidate is published unjudged, said so in the evidence, and the online test
   decides.
4. Otherwise the version is trained on **all** the data (warm-started from the serving version
   where the sources allow), so the newest day is not lost, and published as a challenger:
   serving plan ``{"arms": {serving: 1 - share, candidate: share}}``.

Each outcome is recorded with ``Store.record_decision("retrain", action, evidence)``.

>>> result = retrain_once("models", store, share=0.1)   # doctest: +SKIP
>>> result.action, result.candidate                        # doctest: +SKIP
('challenger', 'v0004')
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.errors import ConfigError
from shoprec.eval.metrics.accuracy import ndcg, recall
from shoprec.pipeline.context import UserContext
from shoprec.service.ab import SETTING, VersionManager
from shoprec.service.store.base import Store
from shoprec.service.trainstore import StoreData, dataset_from_store
from shoprec.service.versions import list_versions, load_pipeline, read_manifest, reject_version, train_version
from shoprec.timeunits import DAY

EXPERIMENT = "retrain"
"""The name the retrain job's decisions are recorded under."""


@dataclass
class RetrainResult:
    """What one retrain did: ``action`` is ``challenger``, ``rejected`` or ``no-new-data``."""

    action: str
    message: str
    serving: str | None = None
    candidate: str | None = None
    evidence: dict = field(default_factory=dict)
    data: StoreData | None = None


def serving_version(models_dir: str | Path, store: Store) -> str:
    """The version serving most traffic: pinned, else the largest arm (oldest on a tie), else the newest."""
    plan = store.get_setting(SETTING) or {}
    if plan.get("pinned"):
        return plan["pinned"]
    arms = plan.get("arms") or {}
    if arms:
        return max(sorted(arms, key=lambda v: int(v[1:])), key=lambda v: arms[v])
    versions = list_versions(models_dir)
    if not versions:
        raise ConfigError(f"no trained model version in {models_dir}", fix="train a first version from files")
    return versions[-1]


def retrain_once(
    models_dir: str | Path,
    store: Store,
    *,
    share: float = 0.1,
    tolerance: float = 0.02,
    warm: bool = True,
    window_seconds: float = DAY,
    config_text: str | None = None,
    vector_cache: str | Path | None = None,
    progress: bool = False,
) -> RetrainResult:
    """Train, judge and publish one candidate (see the module docstring). ``config_text``: a pipeline
    TOML for the candidate (default: the serving version's); ``vector_cache``: item-vector cache folder
    (default ``<models_dir>/vector-cache``)."""
    if not 0 < share < 1:
        raise ConfigError(f"challenger share must be between 0 and 1 (exclusive), got {share}")
    if tolerance < 0:
        raise ConfigError(f"tolerance must be >= 0, got {tolerance}")
    models_dir = Path(models_dir)
    serving = serving_version(models_dir, store)
    manager = VersionManager(models_dir, store)
    if not (store.get_setting(SETTING) or {}):
        manager.set_plan({"pinned": serving})  # a new folder must not be served before it is judged
    dataset, data = dataset_from_store(store, models_dir)
    evidence: dict = {"serving": serving, "data": _data_evidence(data)}
    if not data.has_new_data:
        return _record(store, RetrainResult("no-new-data", data.no_new_data_message(), serving, None, evidence, data))
    serving_path = models_dir / serving
    config_text = config_text or (serving_path / "pipeline.toml").read_text(encoding="utf-8")
    encoder = read_manifest(serving_path).get("encoder", "auto")
    cache = Path(vector_cache) if vector_cache else models_dir / "vector-cache"
    began = time.perf_counter()
    guard = _guard(dataset, serving_path, models_dir, config_text, encoder, cache, window_seconds, tolerance, warm)
    evidence["guard"] = guard
    scratch = guard.pop("path", None)
    if not guard["passed"]:
        rejected = reject_version(scratch, evidence, models_dir)
        shutil.rmtree(scratch.parent, ignore_errors=True)
        message = f"candidate rejected: {guard['reason']}; kept as {rejected.name}, not served"
        return _record(store, RetrainResult("rejected", message, serving, rejected.name, evidence, data))
    if scratch is not None:
        shutil.rmtree(scratch.parent, ignore_errors=True)
    path = train_version(
        dataset,
        models_dir,
        config_text,
        encoder,
        evaluate=False,
        progress=progress,
        vector_cache=cache,
        lineage=data.lineage() | {"guard": guard},
        warm_from=serving_path if warm else None,
    )
    evidence["candidate"] = path.name
    evidence["train_seconds"] = round(time.perf_counter() - began, 1)
    evidence["warm_start"] = read_manifest(path).get("warm_start", {})
    manager.set_plan({"arms": {serving: round(1 - share, 6), path.name: share}})
    message = f"published {path.name} as challenger to {serving} on {share:.0%} of traffic ({guard['reason']})"
    return _record(store, RetrainResult("challenger", message, serving, path.name, evidence, data))


def _record(store: Store, result: RetrainResult) -> RetrainResult:
    evidence = {**result.evidence, "message": result.message}
    store.record_decision(EXPERIMENT, result.action, evidence, time.time())
    return result


def _data_evidence(data: StoreData) -> dict:
    keys = ("base", "previous", "events_seq", "new_events", "store_events", "upserts", "deletes", "forgotten")
    return {k: getattr(data, k) for k in keys}


# ---------------------------------------------------------------------- the offline guard
def _guard(
    dataset: Dataset,
    serving: Path,
    models_dir: Path,
    config_text: str,
    encoder: str,
    cache: Path,
    window_seconds: float,
    tolerance: float,
    warm: bool,
) -> dict:
    """Train the candidate recipe without the window into a scratch models folder and compare."""
    times = dataset.interactions["timestamp"].to_numpy()
    serving_newest = int(read_manifest(serving).get("data_newest", 0))
    cut = max(int(times.max()) - int(window_seconds), serving_newest) + 1
    held = times >= cut
    window = {"from": cut, "events": int(held.sum()), "serving_newest": serving_newest}
    if not held.any() or held.all():  # e.g. only catalog changes or forgotten users since
        reason = "not judged offline: no event newer than the serving version's data (the online test decides)"
        return {"passed": True, "reason": reason, "window": window}
    before = dataset.subset(~held, name="before-window")
    scratch = train_version(
        before,
        models_dir / f".guard-{time.time_ns()}",
        config_text,
        encoder,
        evaluate=False,
        vector_cache=cache,
        warm_from=serving if warm else None,
    )
    users, truth = _window_truth(dataset, held)
    window["users"] = len(users)
    scores = {
        "serving": score_on_window(serving, before, users, truth, cut),
        "candidate": score_on_window(scratch, before, users, truth, cut),
    }
    base, cand = scores["serving"]["ndcg@10"], scores["candidate"]["ndcg@10"]
    passed = cand >= base * (1 - tolerance)
    verb = "within" if passed else "worse than"
    reason = f"NDCG@10 {cand:.4f} vs serving {base:.4f}: {verb} the tolerance of {tolerance:.0%}"
    return {"passed": bool(passed), "reason": reason, "window": window, "scores": scores, "path": scratch}


def _window_truth(dataset: Dataset, held: np.ndarray) -> tuple[np.ndarray, list[set[str]]]:
    """Users with a window event on an item they had no event with before, and those items' ids."""
    frame = dataset.interactions
    seen = set(zip(frame["user"].to_numpy()[~held].tolist(), frame["item"].to_numpy()[~held].tolist(), strict=True))
    ids = dataset.item_vocab.ids()
    truth: dict[int, set[str]] = {}
    for u, i in zip(frame["user"].to_numpy()[held].tolist(), frame["item"].to_numpy()[held].tolist(), strict=True):
        if (u, i) not in seen:
            truth.setdefault(u, set()).add(str(ids[i]))
    users = np.array(sorted(truth), dtype=np.int64)
    return users, [truth[u] for u in users.tolist()]


def score_on_window(version: Path, before: Dataset, users: np.ndarray, truth: list[set[str]], now: int) -> dict:
    """Full-catalogue NDCG@10 and recall@10/20 of a version for ``users`` (indices of ``before``), each
    ranked from their history in ``before`` mapped into the version's ids, at time ``now``."""
    _, dataset, _, pipe = load_pipeline(version)
    seqs, frame = before.sequences(), before.interactions
    events = frame["event"].astype(str).to_numpy()
    item_ids = before.item_vocab.ids()
    contexts = []
    for u in users.tolist():
        lo, hi = seqs.indptr[u], seqs.indptr[u + 1]
        mapped = dataset.item_vocab.index(item_ids[seqs.items[lo:hi]])
        keep = mapped >= 0
        user = int(dataset.user_vocab.index([before.user_vocab.ids([u])[0]])[0])
        contexts.append(
            UserContext(user, mapped[keep].astype(np.int64), seqs.timestamps[lo:hi][keep], now, events[lo:hi][keep])
        )
    k = 20
    lists = [
        dataset.item_vocab.ids(r.items[r.items >= 0][:k]) for r in pipe.recommend(contexts, k=k, with_shares=False)
    ]
    vocab = {i: n for n, i in enumerate(sorted({str(i) for row in lists for i in row} | set().union(*truth)))}
    recs = np.full((len(lists), k), -1, dtype=np.int64)
    for row, items in enumerate(lists):
        recs[row, : len(items)] = [vocab[str(i)] for i in items]
    rows = np.repeat(np.arange(len(truth)), [len(t) for t in truth])
    cols = [vocab[i] for t in truth for i in sorted(t)]
    matrix = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(truth), len(vocab)))
    return {
        "users": len(truth),
        "ndcg@10": round(float(ndcg(recs, matrix, 10).mean()), 5),
        "recall@10": round(float(recall(recs, matrix, 10).mean()), 5),
        "recall@20": round(float(recall(recs, matrix, 20).mean()), 5),
    }
