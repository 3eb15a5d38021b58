"""End-to-end CLI runs: the demo shop, import/describe/evaluate/fit/recommend, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from shoprec.cli.main import main
from shoprec.data.adapters import load_dataset
from shoprec.eval import evaluate, leave_last_out
from shoprec.models import create_model

SMALL = ["--items", "300", "--users", "200"]


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def shop_folder(tmp_path_factory):
    from shoprec.data.demo import generate_demo_shop

    return generate_demo_shop(seed=3, n_items=300, n_users=200).write(tmp_path_factory.mktemp("shop"), fmt="csv")


def test_demo_end_to_end(tmp_path, capsys):
    code, out, err = run(["demo", "--out", str(tmp_path), *SMALL, "--no-serve"], capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "models" / "v0001" / "manifest.json").read_text())
    assert "shoprec serve --models" in out
    assert "ndcg@10" in out.lower() and "recommended by" in out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(report["models"]) == {"popularity", "trending", "itemknn", "als", "ease", "content"}
    ndcg = {name: m["metrics"]["ndcg@10"] for name, m in report["models"].items()}
    # The same leave-last-out test split: the demo shop plants co-purchase and taste structure that
    # the served pipeline and EASE learn and item popularity cannot see.
    assert manifest["metrics"]["users"] == report["models"]["popularity"]["users"]
    assert manifest["metrics"]["pipeline"]["ndcg@10"] > 4 * ndcg["popularity"]  # measured: 0.365 against 0.038
    assert ndcg["ease"] > 4 * ndcg["popularity"]  # measured: 0.246
    assert (tmp_path / "report" / "report.png").stat().st_size > 5000
    assert "pipeline (learned)" in out and "home feed with explanations" in out
    assert " en: " in out and " zh: " in out
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_import_describe_evaluate_fit_recommend(shop_folder, tmp_path, capsys):
    code, out, _ = run(["datasets", "describe", str(shop_folder), "--json"], capsys)
    assert code == 0
    summary = json.loads(out[out.index("{") :])
    assert summary["items"] == 300

    code, out, _ = run(["datasets", "import", str(shop_folder), "--out", str(tmp_path / "saved")], capsys)
    assert code == 0 and (tmp_path / "saved" / "schema.json").exists()

    code, out, err = run(
        [
            "evaluate",
            str(tmp_path / "saved"),
            "--models",
            "popularity,ease",
            "--set",
            "ease.reg=100",
            "--k",
            "5,10",
            "--out",
            str(tmp_path / "eval"),
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["protocol"] == "leave-last-out" and set(report["models"]) == {"popularity", "ease"}
    # The command reports what the library computes for the same split and settings ...
    split = leave_last_out(load_dataset(tmp_path / "saved"), stage="test")
    api = evaluate({"popularity": create_model("popularity"), "ease": create_model("ease", reg=100)}, split, ks=(5, 10))
    for name in ("popularity", "ease"):
        assert report["models"][name]["users"] == len(split.users)
        for metric in ("ndcg@10", "recall@5", "mrr@10"):
            assert report["models"][name]["metrics"][metric] == pytest.approx(
                api.models[name].metrics[metric], abs=1e-9
            )
    # ... and EASE finds the demo shop's planted co-purchases, which popularity cannot.
    assert report["models"]["ease"]["metrics"]["ndcg@10"] > 3 * report["models"]["popularity"]["metrics"]["ndcg@10"]

    code, out, err = run(["fit", str(shop_folder), "--model", "itemknn", "--out", str(tmp_path / "knn")], capsys)
    assert code == 0, err
    users = pd.read_csv(shop_folder / "interactions.csv", dtype=str)["user_id"].iloc[:1].tolist()
    code, out, err = run(
        [
            "recommend",
            str(shop_folder),
            "--model-dir",
            str(tmp_path / "knn"),
            "--user",
            users[0],
            "--user",
            "nobody-like-this",
            "-k",
            "5000",
        ],
        capsys,
    )
    assert code == 0, err
    assert "unknown user: popular items shown" in out
    assert out.count(" 1. ") == 2  # both users get a list; k above the catalogue is padded, not an error


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["evaluate", "no/such/folder"], "no such file or folder"),
        (["evaluate", "demo", "--models", "popularity,nosuchmodel"], "unknown model 'nosuchmodel'"),
        (["evaluate", "demo", "--models", "ease", "--set", "ease.nosuch=1"], "has no setting 'nosuch'"),
        (["evaluate", "demo", "--k", "ten"], "'ten' is not a valid cut-off"),
        (["evaluate", "demo", "--set", "reg=3"], "write MODEL.SETTING=VALUE"),
        (["recommend", "demo", "--model-dir", "nowhere", "--user", "u1"], "no fitted model here"),
    ],
)
def test_bad_input_is_one_clear_line(argv, expect, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert expect in err and "Traceback" not in err


def test_bad_data_file_reports_file_row_column(tmp_path, capsys):
    pd.DataFrame({"item_id": ["a", "a"]}).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"user_id": ["u"], "item_id": ["a"]}).to_csv(tmp_path / "interactions.csv", index=False)
    code, _, err = run(["datasets", "describe", str(tmp_path)], capsys)
    assert code == 2
    assert "items.csv, row 2 (line 3), column 'item_id': duplicate item id 'a'" in err


def test_console_script_help_for_every_command():
    exe = [sys.executable, "-m", "shoprec.cli.main"]
    for cmd in ([], ["demo"], ["datasets"], ["datasets", "download"], ["evaluate"], ["fit"], ["recommend"]):
        proc = subprocess.run([*exe, *cmd, "--help"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "usage:" in proc.stdout
