"""``shoprec evaluate``: fit models on a split, rank the full catalogue, report metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from shoprec.cli.common import add_data_arguments, load_data, parse_list, parse_settings
from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.models import create_model, model_names

DEFAULT_MODELS = "popularity,trending,itemknn,als,ease"


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="evaluate models on a dataset (full-catalogue ranking)",
        description="Fit each model on the training part of a split, rank the full catalogue for every "
        "evaluated user, and report HR, Recall, Precision, F1, NDCG, MRR, coverage, novelty and "
        "long-tail share. Writes report.json, report.md and report.png.",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--protocol",
        choices=("leave-last-out", "temporal"),
        default="leave-last-out",
        help="leave-last-out (per user) or temporal (global cutoff); default: leave-last-out",
    )
    parser.add_argument(
        "--variant",
        choices=("repeat", "discovery"),
        default="discovery",
        help="temporal only: keep re-bought items in the truth (repeat) or not (discovery)",
    )
    parser.add_argument("--test-days", type=float, default=30.0, help="temporal only: days in the test window")
    parser.add_argument(
        "--stage",
        choices=("test", "valid"),
        default="test",
        help="evaluate on the test target or on the validation target (for tuning)",
    )
    parser.add_argument(
        "--models", default=DEFAULT_MODELS, help=f"comma-separated model names (default: {DEFAULT_MODELS})"
    )
    parser.add_argument("--k", default="5,10,20", help="cut-offs, comma-separated (default: 5,10,20)")
    parser.add_argument("--set", action="append", metavar="MODEL.KEY=VALUE", help="model setting, repeatable")
    parser.add_argument(
        "--out", default="shoprec-out/evaluate", help="folder for the report (default: shoprec-out/evaluate)"
    )
    parser.set_defaults(run=run_evaluate)


def make_split(dataset: Dataset, args: argparse.Namespace):
    from shoprec.eval import leave_last_out, temporal_split

    if args.protocol == "leave-last-out":
        return leave_last_out(dataset, stage=args.stage)
    return temporal_split(dataset, test_days=args.test_days, variant=args.variant, stage=args.stage)


def build_models(names: list[str], settings: dict[str, dict]) -> dict:
    unknown = [n for n in names if n not in model_names()]
    if unknown:
        raise ShoprecError(f"unknown model '{unknown[0]}'; available: {', '.join(model_names())}")
    stray = sorted(set(settings) - set(names))
    if stray:
        raise ShoprecError(f"--set names model '{stray[0]}', which is not in --models {','.join(names)}")
    models = {name: create_model(name, **settings.get(name, {})) for name in names}
    for model in models.values():
        model.progress = True
    return models


def run_evaluate(args: argparse.Namespace) -> int:
    from shoprec.eval import evaluate, format_table, write_report

    ks = parse_list(args.k, int, "cut-off")
    if min(ks) < 1:
        raise ShoprecError(f"--k values must be positive, got {args.k}")
    models = build_models(parse_list(args.models, str, "model name"), parse_settings(args.set))
    dataset = load_data(args)
    split = make_split(dataset, args)
    result = evaluate(models, split, ks=tuple(ks))
    print()
    print(format_table(result))
    paths = write_report(result, Path(args.out))
    print()
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
