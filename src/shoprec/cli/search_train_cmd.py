"""``shoprec search-train``: fine-tune a shop's search models (query tower, cross-encoder, ranker)."""

from __future__ import annotations

import argparse
import json

from shoprec.cli.common import add_data_arguments, load_data
from shoprec.errors import ShoprecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    from shoprec.search.crossencoder import CrossEncoderSettings
    from shoprec.search.finetune import QueryTowerSettings

    tower, cross = QueryTowerSettings(), CrossEncoderSettings()
    parser = commands.add_parser(
        "search-train",
        help="fine-tune search on judgments or the shop's search log: query encoder, cross-encoder, ranker",
        description="Split the distinct queries of the judgments (a CSV query,item_id,relevance, or the dataset's "
        "search log: a click is relevance 1) into training, validation and test queries; fine-tune MiniLM's "
        "query side against the item vectors, train a cross-encoder from MiniLM's first layers, and (when the "
        "validation queries allow) a LightGBM ranker over the engine's hits; write the models and a manifest "
        "with held-out metrics before and after training, measured on the test queries.",
    )
    add_data_arguments(parser)
    parser.add_argument("--out", required=True, help="folder to write (new, empty, or an earlier search-train output)")
    parser.add_argument("--judgments", default=None, help="CSV with columns query,item_id,relevance (default: the log)")
    parser.add_argument("--item-encoder", default="minilm-int8", help="minilm-int8 (default) or minilm")
    parser.add_argument("--cache", default=None, help="vector cache folder: only new or changed item texts are encoded")
    parser.add_argument("--split", default="0.6,0.2,0.2", help="train,validation,test shares of the queries")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the query split and training (default: 0)")
    parser.add_argument(
        "--min-relevance", type=float, default=None, help="relevance that makes a pair a positive (default: lowest)"
    )
    parser.add_argument("--epochs", type=int, default=tower.epochs, help="query tower passes (default: 1)")
    parser.add_argument("--ce-layers", type=int, default=cross.layers, help="cross-encoder layers (default: 2)")
    parser.add_argument("--ce-epochs", type=int, default=cross.epochs, help="cross-encoder passes (default: 1)")
    parser.add_argument("--max-length", type=int, default=cross.max_length, help="tokens per query+product")
    parser.add_argument("--threads", type=int, default=tower.threads, help="torch threads (default: 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_search_train)


def run_search_train(args: argparse.Namespace) -> int:
    from shoprec.cli.common import parse_list
    from shoprec.search.crossencoder import CrossEncoderSettings
    from shoprec.search.finetune import QueryTowerSettings
    from shoprec.search.training import train_search

    split = tuple(parse_list(args.split, float, "share"))
    if len(split) != 3:
        raise ShoprecError(f"--split needs three shares (train,validation,test), got '{args.split}'")
    if min(split) < 0 or abs(sum(split) - 1.0) > 1e-6:
        raise ShoprecError(f"--split shares must be non-negative and add up to 1, got '{args.split}'")
    for name in ("epochs", "ce_layers", "ce_epochs", "max_length", "threads"):
        if getattr(args, name) < 1:
            raise ShoprecError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    dataset = load_data(args)
    seed = args.split_seed
    tower = QueryTowerSettings(epochs=args.epochs, seed=seed, threads=args.threads)
    if args.min_relevance is not None:
        tower = QueryTowerSettings(**{**tower.__dict__, "min_relevance": args.min_relevance})
    cross = CrossEncoderSettings(
        layers=args.ce_layers, epochs=args.ce_epochs, max_length=args.max_length, seed=seed, threads=args.threads
    )
    manifest = train_search(
        dataset,
        args.out,
        judgments=args.judgments,
        item_encoder=args.item_encoder,
        cache_dir=args.cache,
        split=split,
        seed=seed,
        tower=tower if args.min_relevance is not None else None,
        cross=cross,
        progress=not args.quiet,
    )
    print_manifest(manifest, args.out)
    return 0


def print_manifest(manifest: dict, out: str) -> None:
    split = manifest["split"]
    print(
        f"judgments: {manifest['judgments']['pairs']} pairs over {manifest['judgments']['queries']} queries "
        f"({manifest['judgments']['source']}); dropped: {json.dumps(manifest['judgments']['dropped'])}"
    )
    print(
        f"queries: {split['train_queries']} train, {split['validation_queries']} validation, "
        f"{split['test_queries']} test (seed {split['seed']})"
    )
    tower, cross = manifest["query_tower"], manifest["crossencoder"]
    print(
        f"query tower (test queries): recall@10 {tower['before']['recall@10']:.3f} -> {tower['after']['recall@10']:.3f}"
        f", recall@100 {tower['before']['recall@100']:.3f} -> {tower['after']['recall@100']:.3f}"
    )
    if cross["after"]:
        print(
            f"cross-encoder (test pairs): ndcg@10 {cross['before']['ndcg@10']:.3f} -> {cross['after']['ndcg@10']:.3f}"
            f", pair accuracy {cross['before']['pair_accuracy']:.3f} -> {cross['after']['pair_accuracy']:.3f}"
        )
    ranker = manifest["ranker"]
    if ranker.get("trained"):
        test = ranker["test"]
        print(
            f"ranker (test queries): recall@10 {test['hybrid + cross-encoder']['recall@10']:.3f} -> "
            f"{test['ranker']['recall@10']:.3f}"
        )
    else:
        print(f"ranker: not trained ({ranker.get('reason')})")
    print(f"written to {out} (manifest.json)")
