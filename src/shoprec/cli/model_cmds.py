"""``shoprec models``, ``shoprec fit`` and ``shoprec recommend``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from shoprec.cli.common import add_data_arguments, load_data, parse_settings
from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.models import PAD_ITEM, Recommender, create_model, get_model_class, model_names


def add_commands(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list the registered models and their settings")
    models.set_defaults(run=run_models)

    fit = commands.add_parser(
        "fit",
        help="fit one model on a dataset and save it",
        description="Fit a model and save it to a folder (JSON + npz, no pickle).",
    )
    add_data_arguments(fit)
    fit.add_argument("--model", required=True, help="model name (see 'shoprec models')")
    fit.add_argument("--set", action="append", metavar="MODEL.KEY=VALUE", help="model setting, repeatable")
    fit.add_argument("--out", required=True, help="folder to save the fitted model to")
    fit.set_defaults(run=run_fit)

    rec = commands.add_parser(
        "recommend",
        help="recommend items for users with a fitted model",
        description="Print top-k items (with titles) for the given users.",
    )
    add_data_arguments(rec)
    rec.add_argument("--model-dir", required=True, help="folder written by 'shoprec fit'")
    rec.add_argument("--user", action="append", required=True, help="external user id, repeatable")
    rec.add_argument("-k", type=int, default=10, help="number of items (default: 10)")
    rec.set_defaults(run=run_recommend)


def run_models(args: argparse.Namespace) -> int:
    for name in model_names():
        cls = get_model_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name}: {doc}")
        for field in dataclasses.fields(cls.config_class):
            print(f"    {field.name} = {field.default!r}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    dataset = load_data(args)
    settings = parse_settings(args.set)
    model = create_model(args.model, **settings.get(args.model, {}))
    model.progress = True
    model.fit(dataset)
    path = model.save(args.out)
    print(f"saved {model!r} to {path}")
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    if not Path(args.model_dir, "model.json").exists():
        raise ShoprecError(
            f"{args.model_dir}: no fitted model here. Run 'shoprec fit ... --out {args.model_dir}' first"
        )
    dataset = load_data(args)
    model = Recommender.load(args.model_dir)
    if model.n_items != dataset.n_items:
        raise ShoprecError(
            f"the model was fitted on {model.n_items} items but this dataset has {dataset.n_items}: "
            "give the dataset the model was fitted on"
        )
    users = dataset.user_vocab.index(args.user)
    items, scores = model.recommend(users, k=args.k)
    for user_id, user, row, row_scores in zip(args.user, users, items, scores, strict=True):
        known = "" if user >= 0 else "  (unknown user: popular items shown)"
        print(f"user {user_id}{known}")
        print_items(dataset, row, row_scores)
    return 0


def print_items(dataset: Dataset, items: np.ndarray, scores: np.ndarray | None = None, indent: str = "  ") -> None:
    """One line per item: rank, id, title (padding skipped)."""
    titles = dataset.items["title"].to_numpy()
    for rank, item in enumerate(items[items != PAD_ITEM], start=1):
        score = f"{scores[rank - 1]:8.3f}  " if scores is not None else ""
        title = str(titles[item])[:70] or "(no title)"
        print(f"{indent}{rank:>2}. {score}{dataset.item_vocab.ids([item])[0]:<12} {title}")
