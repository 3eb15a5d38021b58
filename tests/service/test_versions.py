"""Model versions: train -> folder with manifest -> load; A/B assignment; the train/keys CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import copy_version, tiny_shop

from shoprec.cli.main import main
from shoprec.errors import ConfigError
from shoprec.pipeline.context import contexts_from_dataset
from shoprec.service.ab import VersionManager, check_plan, user_bucket
from shoprec.service.store import open_store
from shoprec.service.versions import list_versions, load_version, newest_version, read_manifest


@pytest.fixture(scope="module")
def models(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    copy_version(trained, root)
    return root


def test_version_folder_has_manifest_and_loads_to_the_same_lists(models):
    path = newest_version(models)
    manifest = read_manifest(path)
    assert manifest["version"] == path.name == "v0001"
    assert manifest["data"]["fingerprint"] == tiny_shop().fingerprint()
    assert manifest["sources"] == ["ease", "also-viewed", "trending", "searched"]
    assert 0 < manifest["metrics"]["pipeline"]["ndcg@10"] <= 1
    assert set(manifest["metrics"]) >= {"source:ease", "source:also-viewed", "source:trending"}
    assert "[[source]]" in (path / "pipeline.toml").read_text()
    assert not list(path.rglob("*.pkl")) and not list(path.rglob("*.pickle"))
    first, second = load_version(path), load_version(path)
    contexts = contexts_from_dataset(first.dataset, np.arange(20))
    a = first.pipeline.recommend(contexts, k=10, with_shares=False)
    b = second.pipeline.recommend(contexts, k=10, with_shares=False)
    assert all(np.array_equal(x.items, y.items) for x, y in zip(a, b, strict=True))
    assert first.pipeline.ranker.is_fitted and first.pipeline.rank == "learned"


def test_versions_are_numbered_and_half_written_folders_are_ignored(models, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(newest_version(models), root / "v0001")
    (root / ".staging-1-2").mkdir()
    (root / "v0002").mkdir()  # no manifest: an interrupted copy, not a version
    assert list_versions(root) == ["v0001"]
    with pytest.raises(ConfigError, match="no trained model version"):
        newest_version(tmp_path / "empty")


def test_user_bucket_is_stable_and_uniform():
    buckets = np.array([user_bucket(f"u{i}") for i in range(4000)])
    assert buckets.min() >= 0 and buckets.max() < 1
    assert abs((buckets < 0.3).mean() - 0.3) < 0.03
    assert user_bucket("u1") == user_bucket("u1") != user_bucket("u1", salt="x")


def test_plan_checks_name_the_problem():
    with pytest.raises(ConfigError, match="no version 'v0009'"):
        check_plan({"pinned": "v0009"}, ["v0001"])
    with pytest.raises(ConfigError, match="either pinned or arms"):
        check_plan({"pinned": "v0001", "arms": {"v0001": 1}}, ["v0001"])
    with pytest.raises(ConfigError, match="shares"):
        check_plan({"arms": {"v0001": -1}}, ["v0001"])
    with pytest.raises(ConfigError, match="unknown key"):
        check_plan({"pin": "v0001"}, ["v0001"])


def test_manager_splits_users_between_two_versions_and_follows_the_newest(models, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(newest_version(models), root / "v0001")
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    manager = VersionManager(root, store, poll_seconds=0)
    manager.refresh()
    assert list(manager.loaded) == ["v0001"]
    copy_version(root / "v0001", root, "v0002")
    manager.refresh()  # no plan: the newest version replaces the old one
    assert list(manager.loaded) == ["v0002"] and manager.default().version == "v0002"
    manager.set_plan({"arms": {"v0001": 0.25, "v0002": 0.75}})
    manager.refresh()
    arms = [manager.for_user(f"user{i}").version for i in range(2000)]
    assert abs(arms.count("v0001") / 2000 - 0.25) < 0.04
    assert all(manager.for_user(f"user{i}").version == arms[i] for i in range(0, 2000, 97))
    manager.set_plan({"pinned": "v0001"})
    manager.refresh()
    assert {manager.for_user(f"user{i}").version for i in range(50)} == {"v0001"}
    store.close()


def test_broken_version_is_reported_and_the_current_one_keeps_serving(models, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(newest_version(models), root / "v0001")
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    manager = VersionManager(root, store, poll_seconds=0)
    manager.refresh()
    copy_version(root / "v0001", root, "v0002")
    (root / "v0002" / "fusion.json").write_text("{not json")
    manager.refresh()
    assert manager.default().version == "v0001"
    assert "v0002" in manager.load_errors
    shutil.copy(root / "v0001" / "fusion.json", root / "v0002" / "fusion.json")
    manager.refresh()
    assert manager.default().version == "v0001", "a failed version waits before it is tried again"
    manager.forget_failures()
    manager.refresh()
    assert manager.default().version == "v0002" and not manager.load_errors
    store.close()


def test_cli_train_and_keys(tmp_path, capsys):
    shop = tiny_shop().save(tmp_path / "shop")
    code = main(["train", str(shop), "--models", str(tmp_path / "models"), "--no-eval"])
    out = capsys.readouterr().out
    assert code == 0 and "wrote model version v0001" in out
    assert main(["keys", "create", "--models", str(tmp_path / "models"), "--scope", "read", "--scope", "write"]) == 0
    key = capsys.readouterr().out.splitlines()[0]
    assert key.startswith("sr_")
    assert main(["keys", "list", "--models", str(tmp_path / "models")]) == 0
    listed = capsys.readouterr().out
    assert "read,write" in listed and key.split("_", 2)[2] not in listed


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope"), "--models", str(tmp_path)]) == 2
    assert main(["serve", "--models", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "no trained model version" in err and "Traceback" not in err
