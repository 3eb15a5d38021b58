"""Versioned model folders: what ``shoprec train`` writes and the service loads.

A models directory holds one folder per version, ``v0001``, ``v0002``, ... Each is complete on its
own, so the service can load any of them, and is written under a temporary name and renamed into
place, so a reader never sees half a version::

    v0003/
      manifest.json      version, creation time, data fingerprint and size, the pipeline config,
                         encoder, offline metrics, fit times, shoprec version
      pipeline.toml      the pipeline config it was trained with
      data/              the training snapshot (catalog + events, Parquet; Dataset.save)
      item_vectors.npy   text vectors of the catalog (row = item index)
      sources/<name>/    fitted models of the pipeline's model sources (JSON + npz)
      ranker.txt         the learned ranker (LightGBM text format), when trained
      fusion.json        tuned fusion weights
      graph/             item graph for complements
      crosscat/          cross-category model

No pickle anywhere: every file is JSON, TOML, Parquet, npz/npy or LightGBM's text format.

>>> path = train_version(dataset, "models")          # doctest: +SKIP
>>> deployed = load_version(newest_version("models"))   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shoprec import __version__
from shoprec.bundles.recommender import BundleRecommender
from shoprec.data.dataset import Dataset
from shoprec.errors import ConfigError, ModelError, ShoprecError
from shoprec.models.itemgraph import ItemGraph
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.config import build_pipeline, config_from_dict
from shoprec.pipeline.context import contexts_from_dataset
from shoprec.pipeline.crosscat import CrossCategory, derive_categories
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.ranking import LearnedRanker
from shoprec.pipeline.scenarios import Scenarios
from shoprec.pipeline.sources import ModelSource
from shoprec.text.profiles import UserProfiles

MANIFEST = "manifest.json"
VERSION_NAME = re.compile(r"^v(\d{4,})$")
REJECTED = ".rejected"
"""Suffix of a candidate the retrain guard refused (``v0005.rejected``): kept, never listed or served."""
TAKEN_NAME = re.compile(r"^v(\d{4,})(\.rejected)?$")
DEFAULT_CONFIG = Path(__file__).with_name("default_pipeline.toml")
EVAL_KS = (10, 20)


@dataclass
class Deployed:
    """A loaded version: the fitted pipeline and everything the service serves from it."""

    version: str
    path: Path
    manifest: dict
    dataset: Dataset
    pipeline: Pipeline
    scenarios: Scenarios
    item_vectors: np.ndarray
    profiles: object = None
    """:class:`~shoprec.text.profiles.UserProfiles` settings and catalogue for live profiles."""
    bundles: object = None
    """Fitted :class:`~shoprec.bundles.recommender.BundleRecommender`."""
    loaded_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.sequences = self.dataset.sequences()
        self.event_names = np.asarray(self.dataset.interactions["event"].astype(str).to_numpy(), dtype=object)
        self._items = {str(i): n for n, i in enumerate(self.dataset.item_vocab.ids())}
        self._users = {str(u): n for n, u in enumerate(self.dataset.user_vocab.ids())}

    def item_index(self, item_id: str) -> int:
        """Index of an item id in this version, -1 when unknown (a dict lookup: per-request cheap)."""
        return self._items.get(item_id, -1)

    def item_indices(self, item_ids) -> np.ndarray:
        return np.fromiter((self._items.get(str(i), -1) for i in item_ids), dtype=np.int64, count=len(item_ids))

    def user_index(self, user_id: str) -> int:
        return self._users.get(user_id, -1)

    @property
    def info(self) -> ItemInfo:
        return self.pipeline.resources.info


# ---------------------------------------------------------------------- listing
def list_versions(models_dir: str | Path) -> list[str]:
    """Complete versions in ``models_dir``, oldest first (folders with a manifest only)."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if VERSION_NAME.match(p.name) and (p / MANIFEST).exists()]
    return sorted(found, key=lambda name: int(name[1:]))


def newest_version(models_dir: str | Path) -> Path:
    versions = list_versions(models_dir)
    if not versions:
        raise ConfigError(
            f"no trained model version in {models_dir}",
            fix=f"Run 'shoprec train --data <folder> --models {models_dir}' first",
        )
    return Path(models_dir) / versions[-1]


def read_manifest(path: str | Path) -> dict:
    file = Path(path) / MANIFEST
    if not file.exists():
        raise ConfigError(f"{path}: no {MANIFEST}: not a shoprec model version")
    return json.loads(file.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------- training
def train_version(
    dataset: Dataset,
    models_dir: str | Path,
    config_text: str | None = None,
    encoder: str = "auto",
    evaluate: bool = True,
    progress: bool = False,
    vector_cache: str | Path | None = None,
    crosscat_mode: str = "auto",
    *,
    lineage: dict | None = None,
    warm_from: str | Path | None = None,
) -> Path:
    """Train the pipeline on ``dataset`` and write it as the next version; returns its folder.

    The learned ranker and the fusion weights are fitted on the validation stage (each user's
    second-last item held out); with ``evaluate`` the pipeline is refitted on the test stage and
    scored there (full-catalogue NDCG and recall, written to the manifest); the saved sources are
    finally fitted on every event, as served. ``crosscat_mode`` is passed to
    :class:`~shoprec.pipeline.crosscat.CrossCategory` (``graph`` skips training its attention model).

    ``warm_from``: a previous version folder; the final fit of each model source that supports it
    (ALS, SASRec, GRU4Rec, LightGCN) starts from that version's fitted source of the same name, users
    and items matched by id (:mod:`shoprec.models.warmstart`). The validation and test fits stay cold:
    the previous version saw the events they hold out. ``lineage`` (see
    :mod:`shoprec.service.trainstore`) is written to the manifest as it is.
    """
    from shoprec.text.encoders import load_encoder
    from shoprec.text.vectors import item_vectors

    config_text = config_text if config_text is not None else DEFAULT_CONFIG.read_text(encoding="utf-8")
    config = _parse_config(config_text)
    began = time.time()
    enc = load_encoder(encoder, sample_texts=dataset.items["title"].astype(str).tolist()[:500])
    vectors = item_vectors(dataset, enc, cache_dir=vector_cache, progress=progress)

    def vectors_of(train: Dataset) -> np.ndarray:  # a split's item text holds only its training reviews
        return item_vectors(train, enc, cache_dir=vector_cache, progress=progress)

    pipe, notes = build_pipeline(config), []
    ranker_stats = _fit_ranker(pipe, dataset, vectors_of, enc, notes, progress)
    metrics = _offline_metrics(pipe, dataset, vectors_of, enc, progress) if evaluate else {}
    warm = _warm_start(pipe, dataset, Path(warm_from), notes) if warm_from is not None else {}
    _fit(pipe, dataset, vectors, enc, progress)
    graph = ItemGraph.build(dataset)
    crosscat = _fit_crosscat(dataset, pipe.resources.info, vectors, notes, crosscat_mode)
    manifest = {
        "format": "shoprec-model",
        "created": time.time(),
        "shoprec_version": __version__,
        "data": {"fingerprint": dataset.fingerprint(), **dataset.describe()},
        "data_newest": int(dataset.interactions["timestamp"].max()) if len(dataset) else 0,
        "encoder": enc.name,
        "rank": pipe.rank,
        "sources": list(pipe.source_names),
        "metrics": metrics,
        "ranker": ranker_stats,
        "fit_seconds": {name: round(s, 3) for name, s in pipe.fit_seconds.items()},
        "train_seconds": round(time.time() - began, 1),
        "notes": notes,
    }
    if lineage is not None:
        manifest["lineage"] = lineage
    if warm_from is not None:
        manifest["warm_start"] = warm
    return _write(Path(models_dir), pipe, dataset, vectors, graph, crosscat, config_text, manifest)


def _fit(pipe: Pipeline, dataset: Dataset, vectors: np.ndarray, encoder, progress: bool) -> None:
    """Fit the pipeline and give it the encoder that made ``vectors`` (its "queries" recall source
    encodes recent search queries with it; fitting makes new resources)."""
    pipe.fit(dataset, vectors, progress=progress)
    pipe.resources.encoder = encoder


def _warm_start(pipe: Pipeline, dataset: Dataset, previous: Path, notes: list) -> dict:
    """Point each model source that can warm start at the previous version's fitted source of the same
    name; returns source -> the version it starts from, or why it starts cold."""
    from shoprec.models import Recommender
    from shoprec.models.warmstart import index_map

    old = _vocab_ids(previous / "data")
    items = index_map(dataset.item_vocab.ids(), old["items"])
    users = index_map(dataset.user_vocab.ids(), old["users"])
    out = {}
    for source in pipe.sources:
        if not isinstance(source, ModelSource):
            continue
        folder = previous / "sources" / source.name
        if not source.model.warm_startable:
            out[source.name] = f"cold: '{source.model.name}' has no warm start"
        elif not (folder / "model.json").exists():
            out[source.name] = f"cold: {previous.name} has no source '{source.name}'"
        else:
            try:
                source.model.warm_start(Recommender.load(folder), items, users)
                out[source.name] = f"warm from {previous.name}"
            except ModelError as err:
                out[source.name] = f"cold: {err}"
        if out[source.name].startswith("cold: ") and source.model.warm_startable:
            notes.append(f"source {source.name} trained cold ({out[source.name][6:]})")
    return out


def _vocab_ids(data: Path) -> dict[str, list[str]]:
    """Item and user ids of a saved dataset, in index order (without loading its events)."""
    import pandas as pd

    return {
        "items": pd.read_parquet(data / "items.parquet", columns=["item_id"])["item_id"].astype(str).tolist(),
        "users": pd.read_parquet(data / "users.parquet")["user_id"].astype(str).tolist(),
    }


def _parse_config(text: str) -> object:
    try:
        return config_from_dict(tomllib.loads(text), where="pipeline config")
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"pipeline config is not valid TOML: {err}") from None


def _fit_ranker(pipe: Pipeline, dataset: Dataset, vectors_of: Callable, encoder, notes: list, progress: bool) -> dict:
    from shoprec.eval import leave_last_out

    if pipe.rank == "none":
        return {}
    valid = leave_last_out(dataset, stage="valid")
    if not len(valid.users):
        notes.append("no user has enough events for a validation stage: ranking by equal-weight fusion")
        pipe.rank = "fusion"
        return {}
    _fit(pipe, valid.train, vectors_of(valid.train), encoder, progress)
    try:
        stats = pipe.fit_ranker(contexts_from_dataset(valid.train, valid.users), valid.truth)
    except ModelError as err:
        notes.append(f"learned ranker not trained ({err}); ranking by fusion")
        pipe.rank = "fusion"
        return {}
    return {k: v for k, v in stats.items() if isinstance(v, int | float | dict)}


def _offline_metrics(pipe: Pipeline, dataset: Dataset, vectors_of: Callable, encoder, progress: bool) -> dict:
    """Full-catalogue metrics of the pipeline and of each source on the test stage."""
    from shoprec.eval import leave_last_out, score_recommendations

    test = leave_last_out(dataset, stage="test")
    if not len(test.users):
        return {}
    _fit(pipe, test.train, vectors_of(test.train), encoder, progress)
    contexts = contexts_from_dataset(test.train, test.users)
    k = max(EVAL_KS)
    lists = {"pipeline": [r.items for r in pipe.recommend(contexts, k=k, with_shares=False)]}
    for source in pipe.sources:
        lists[f"source:{source.name}"] = [items for items, _ in source.recall(contexts, k)]
    out = {"users": len(test.users), "protocol": "leave-last-out, full catalogue"}
    for label, rows in lists.items():
        recs = np.array([np.pad(r[:k], (0, k - len(r[:k])), constant_values=-1) for r in rows])
        scores = score_recommendations(recs, test, EVAL_KS)[0]
        out[label] = {
            name: round(float(v), 5) for name, v in scores.items() if name.split("@")[0] in ("ndcg", "recall")
        }
    return out


def _fit_crosscat(
    dataset: Dataset, info: ItemInfo, vectors: np.ndarray, notes: list, mode: str
) -> CrossCategory | None:
    categories = info.top
    if not any(categories):
        n = max(2, min(60, dataset.n_items // 50))
        categories = derive_categories(vectors, n_clusters=n)
        notes.append(f"catalog has no categories: cross-category uses {n} text clusters")
    try:
        return CrossCategory(mode=mode).fit(dataset, vectors, categories)
    except ModelError as err:
        notes.append(f"cross-category feed unavailable: {err}")
        return None


def _write(root: Path, pipe, dataset, vectors, graph, crosscat, config_text: str, manifest: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{os.getpid()}-{time.time_ns()}"
    staging.mkdir()
    try:
        dataset.save(staging / "data")
        np.save(staging / "item_vectors.npy", vectors.astype(np.float32), allow_pickle=False)
        for source in pipe.sources:
            if isinstance(source, ModelSource):
                source.model.save(staging / "sources" / source.name)
        if pipe.ranker.is_fitted:
            (staging / "ranker.txt").write_text(pipe.ranker.to_string())
            manifest["ranker_features"] = pipe.ranker.feature_names
        (staging / "fusion.json").write_text(json.dumps(pipe.fusion.weights, indent=2))
        graph.save(staging / "graph")
        if crosscat is not None:
            crosscat.save(staging / "crosscat")
        (staging / "pipeline.toml").write_text(config_text, encoding="utf-8")
        return _publish(root, staging, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _publish(root: Path, staging: Path, manifest: dict) -> Path:
    """Rename the staged folder to the next free version name (retrying if another trainer won)."""
    for _ in range(100):
        taken = [int(m.group(1)) for p in root.iterdir() if (m := TAKEN_NAME.match(p.name))]
        number = max(taken or [0]) + 1  # a rejected candidate's number is never given again
        name = f"v{number:04d}"
        manifest["version"] = name
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=_json_default))
        try:
            os.rename(staging, root / name)
            return root / name
        except OSError:
            continue
    raise ShoprecError(f"could not find a free version name in {root}")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def reject_version(path: str | Path, evidence: dict, models_dir: str | Path | None = None) -> Path:
    """Take a version out of service for good: renamed ``vNNNN.rejected`` (never listed, loaded or
    numbered again) with ``evidence`` written into its manifest as ``rejected``. ``models_dir``: move
    it there under the next free number (a candidate trained in a scratch folder)."""
    path = Path(path)
    manifest = read_manifest(path)
    root = Path(models_dir) if models_dir is not None else path.parent
    for _ in range(100):
        if models_dir is None:
            name = path.name
        else:
            taken = [int(m.group(1)) for p in root.iterdir() if (m := TAKEN_NAME.match(p.name))]
            name = f"v{max(taken or [0]) + 1:04d}"
        manifest.update(version=name, rejected=evidence)
        (path / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=_json_default))
        try:
            os.rename(path, root / (name + REJECTED))
            return root / (name + REJECTED)
        except OSError:
            continue
    raise ShoprecError(f"could not find a free version name in {root} for a rejected candidate")


# ---------------------------------------------------------------------- loading
def load_pipeline(path: str | Path) -> tuple[dict, Dataset, np.ndarray, Pipeline]:
    """A version's manifest, training snapshot, item vectors and fitted pipeline (what scoring needs;
    :func:`load_version` adds scenarios, profiles and bundles for serving)."""
    from shoprec.models import Recommender

    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("format") != "shoprec-model":
        raise ConfigError(f"{path}: manifest format {manifest.get('format')!r} is not a shoprec model")
    config = _parse_config((path / "pipeline.toml").read_text(encoding="utf-8"))
    dataset = Dataset.load(path / "data")
    vectors = np.load(path / "item_vectors.npy", allow_pickle=False)
    pipe = build_pipeline(config)
    pipe.rank = manifest.get("rank", pipe.rank)
    for source in pipe.sources:
        if isinstance(source, ModelSource):
            source.model = Recommender.load(path / "sources" / source.name)
            source.prefitted = True
    pipe.fit(dataset, vectors)
    if (path / "ranker.txt").exists():
        text = (path / "ranker.txt").read_text()
        pipe.ranker = LearnedRanker.from_string(text, pipe.ranker.config, manifest["ranker_features"])
    pipe.fusion.weights = json.loads((path / "fusion.json").read_text())
    return manifest, dataset, vectors, pipe


def load_version(path: str | Path) -> Deployed:
    """Load a version folder into a ready pipeline (model sources from disk, cheap sources refitted)."""
    path = Path(path)
    manifest, dataset, vectors, pipe = load_pipeline(path)
    graph = ItemGraph.load(path / "graph")
    crosscat = CrossCategory.load(path / "crosscat") if (path / "crosscat").exists() else None
    scenarios = Scenarios(pipe, graph=graph, crosscat=crosscat)
    profiles = UserProfiles.build(dataset, vectors, tags=pipe.resources.info.tags)
    bundles = BundleRecommender().fit(dataset, vectors)
    return Deployed(manifest["version"], path, manifest, dataset, pipe, scenarios, vectors, profiles, bundles)
