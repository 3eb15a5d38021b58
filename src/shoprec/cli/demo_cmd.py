"""``shoprec demo``: generate the demo shop, evaluate the baselines, show recommendations."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from shoprec.cli.eval_cmds import DEFAULT_MODELS, build_models
from shoprec.cli.model_cmds import print_items

SHOW_USERS = 3
DEMO_MODELS = DEFAULT_MODELS + ",content"
"""The baselines plus the text-based content model (multilingual encoder: the demo catalogue is bilingual)."""


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="generate the demo shop, evaluate the baselines and show recommendations",
        description="Generate a deterministic demo shop (English and Chinese catalog, sessions, baskets, "
        "reviews, search logs), evaluate the baselines and the text-based content model with leave-last-out "
        "full-catalogue ranking, and print a few users' recommendations.",
    )
    parser.add_argument("--seed", type=int, default=7, help="demo shop seed (default: 7)")
    parser.add_argument("--out", default="shoprec-out/demo", help="output folder (default: shoprec-out/demo)")
    parser.add_argument("--models", default=DEMO_MODELS, help=f"models to compare (default: {DEMO_MODELS})")
    parser.add_argument("--items", type=int, default=3000, help="products in the demo shop (default: 3000)")
    parser.add_argument("--users", type=int, default=2000, help="shoppers in the demo shop (default: 2000)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve the demo shop on (default: 8000)")
    parser.add_argument("--no-serve", action="store_true", help="exit after training instead of serving (for tests)")
    parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from shoprec.cli.common import parse_list
    from shoprec.data.demo import generate_demo_shop
    from shoprec.eval import evaluate, format_table, leave_last_out, write_report

    started = time.perf_counter()
    out = Path(args.out)
    models = build_models(parse_list(args.models, str, "model name"), {})
    shop = generate_demo_shop(seed=args.seed, n_items=args.items, n_users=args.users, progress=True)
    data_dir = shop.write(out / "shop")
    dataset = shop.to_dataset()
    print(f"demo shop: {dataset!r}, written to {data_dir}")
    for line in dataset.report.lines():
        print(f"  {line}")

    split = leave_last_out(dataset, stage="test")
    result = evaluate(models, split, ks=(5, 10, 20))
    print()
    print(format_table(result))
    paths = write_report(result, out / "report")

    best = max(result.models, key=lambda name: result.models[name].metrics["ndcg@10"])
    show_examples(dataset, split, models[best], best)
    paths["heatmap"] = show_pipeline(dataset, split, out)
    paths["model version"] = train_for_service(dataset, out / "models")
    print()
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return serve_demo(out / "models", args.port, args.no_serve)


def train_for_service(dataset, models: Path) -> Path:
    """The demo shop as a model version the service loads."""
    from shoprec.service.versions import train_version

    print("\ntraining a model version for the service ...", flush=True)
    return train_version(dataset, models, progress=False)


def serve_demo(models: Path, port: int, no_serve: bool) -> int:
    """Serve the demo shop with the dashboard on localhost, with a fresh admin key."""
    from shoprec.cli.service_cmds import serve
    from shoprec.service.app import store_url
    from shoprec.service.auth import create_key
    from shoprec.service.settings import ServiceSettings
    from shoprec.service.store import open_store

    settings = ServiceSettings(models_dir=str(models))
    if no_serve:
        print(f"\nto serve it: shoprec serve --models {models}")
        return 0
    store = open_store(store_url(settings))
    key = create_key(store, ["admin"])
    store.close()
    print(f"\ndashboard: http://127.0.0.1:{port}/dashboard?key={key}")
    print(f"API docs:  http://127.0.0.1:{port}/docs   (send X-API-Key: {key})")
    print("press Ctrl+C to stop", flush=True)
    serve(settings, "127.0.0.1", port)
    return 0


def show_examples(dataset, split, model, name: str) -> None:
    """A few evaluated users: their latest items, then the best model's top 5 with titles."""
    users = np.flatnonzero(np.diff(split.truth.indptr) > 0)[:SHOW_USERS]
    items, scores = model.recommend(users, k=5, exclude_seen=split.exclude_seen)
    sequences = split.train.sequences()
    for row, user in enumerate(users):
        print(f"\nuser {dataset.user_vocab.ids([user])[0]}: recent items")
        history = sequences.of(user)[::-1]
        recent = history[np.sort(np.unique(history, return_index=True)[1])][:3]
        print_items(dataset, recent, indent="     ")
        print(f"  recommended by {name} (held-out item: {dataset.item_vocab.ids(split.truth[user].indices)[0]})")
        print_items(dataset, items[row], scores[row], indent="     ")


def show_pipeline(dataset, split, out: Path) -> Path:
    """The recommendation pipeline on the demo shop: ranker trained on the validation stage, scored
    against its own sources on the test stage, then one shopper's list explained in English and
    Chinese, with the contribution heatmap written as PNG."""
    from shoprec.eval import leave_last_out, score_recommendations
    from shoprec.models import create_model
    from shoprec.models.itemgraph import ItemGraph
    from shoprec.pipeline.context import contexts_from_dataset
    from shoprec.pipeline.explain_text import heatmap_data, plot_heatmap, render
    from shoprec.pipeline.pipeline import Pipeline
    from shoprec.pipeline.scenarios import Scenarios
    from shoprec.pipeline.sources import ItemToItemSource, ModelSource, PopularitySource

    def build() -> Pipeline:
        sources = [
            ModelSource("ease", create_model("ease")),
            ItemToItemSource("also-viewed"),
            PopularitySource("trending", window_days=7),
        ]
        return Pipeline(sources, recall_k=50)

    print("\npipeline: sources ease, also-viewed (item-to-item), trending; ranker trained on the validation stage")
    valid = leave_last_out(dataset, stage="valid")
    pipe = build().fit(valid.train)
    pipe.fit_ranker(contexts_from_dataset(valid.train, valid.users), valid.truth)
    pipe.fit(split.train)
    contexts = contexts_from_dataset(split.train, split.users)
    rows = {}
    for mode in ("learned", "fusion"):
        recs = pipe.recommend(contexts, k=10, mode=mode, with_shares=False)
        rows[f"pipeline ({mode})"] = np.array(
            [np.pad(r.items, (0, 10 - len(r.items)), constant_values=-1) for r in recs]
        )
    for source in pipe.sources:
        lists = source.recall(contexts, 10)
        rows[f"source {source.name}"] = np.array([np.pad(i, (0, 10 - len(i)), constant_values=-1) for i, _ in lists])
    for label, recs in rows.items():
        print(f"  {label:<22} NDCG@10 {score_recommendations(recs, split, (10,))[0]['ndcg@10']:.4f}")
    feeds = Scenarios(pipe, graph=ItemGraph.build(split.train))
    context = contexts[0]
    rec = feeds.run("home", context, k=5)
    explanations = feeds.explain(context, rec)
    print(f"\nuser {dataset.user_vocab.ids([context.user])[0]}, home feed with explanations:")
    for exp in explanations:
        print(f"  {exp.item_id}  {exp.title[:60]}")
        print(f"     en: {render(exp, 'en')}")
        print(f"     zh: {render(exp, 'zh')}")
    return plot_heatmap(heatmap_data(context, explanations, pipe.resources.info), out / "heatmap.png")
