"""``shoprec train``, ``shoprec serve`` and ``shoprec keys``: model versions and the HTTP service."""

from __future__ import annotations

import argparse
from pathlib import Path

from shoprec.cli.common import add_data_arguments, load_data
from shoprec.errors import ShoprecError

DEFAULT_MODELS = "shoprec-models"


def add_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train the recommendation pipeline and write it as a new model version",
        description="Train the pipeline (sources, learned ranker, item graph, cross-category and bundle models) "
        "and write a versioned folder with a manifest (data hash, config, offline metrics). A running service "
        "picks the new version up and swaps to it without dropping requests.",
    )
    add_data_arguments(train)
    _data_optional(train)
    train.add_argument(
        "--store",
        help="train from the service's database instead of DATA: the base snapshot of the newest version's "
        "lineage plus every event and catalog change since, forgotten users left out",
    )
    train.add_argument(
        "--cold", action="store_true", help="with --store: do not warm-start model sources from the newest version"
    )
    train.add_argument("--models", default=DEFAULT_MODELS, help=f"models folder (default: {DEFAULT_MODELS})")
    train.add_argument("--config", help="pipeline TOML (default: EASE + also-viewed + trending, learned ranker)")
    train.add_argument("--encoder", default="auto", help="text encoder name or model folder (default: auto)")
    train.add_argument("--no-eval", action="store_true", help="skip the offline evaluation on the test stage")
    train.set_defaults(run=run_train)

    serve = commands.add_parser(
        "serve",
        help="serve recommendations over HTTP (API, dashboard, metrics)",
        description="Start the HTTP service on the embedded SQLite store (or --store postgresql://...). "
        "API docs at /docs, dashboard at /dashboard, Prometheus metrics at /metrics.",
    )
    add_service_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.add_argument("--no-auth", action="store_true", help="serve without API keys (private machines only)")
    serve.add_argument("--cors", help="comma-separated browser origins allowed to call the API")
    serve.add_argument(
        "--no-search-dense", action="store_true", help="product search by words only (no query encoder loaded)"
    )
    serve.add_argument("--search-ranker", help="learned search ranker folder re-scoring each search's best 100 hits")
    serve.add_argument("--search-cross-encoder", help="cross-encoder folder re-scoring each search's best 20 hits")
    serve.add_argument("--search-merch", help="search merchandising TOML (synonyms, per-query pins/boosts/buries)")
    serve.add_argument(
        "--retrain-every", help="retrain from the store this often on a background thread (6h, 30m, 1d; default: never)"
    )
    serve.add_argument("--retrain-share", type=float, help="traffic share of a retrained challenger (default: 0.1)")
    serve.set_defaults(run=run_serve)

    retrain = commands.add_parser(
        "retrain",
        help="retrain from the store on a schedule; publish a candidate that passes the offline guard as challenger",
        description="Train a candidate version from the store (base snapshot + events and catalog changes since, "
        "forgotten users left out, warm-started from the serving version), check it offline against the serving "
        "version on the most recent window, and publish it as a challenger with --share of the traffic. A "
        "candidate worse than the serving version by more than --tolerance is kept as vNNNN.rejected, never "
        "served. Runs every --every (a retrain is due when the last one recorded in the store is that old), or "
        "once with --once.",
    )
    add_service_arguments(retrain)
    retrain.add_argument("--every", default="6h", help="time between retrains: 6h, 30m, 1d or seconds (default: 6h)")
    retrain.add_argument("--once", action="store_true", help="retrain once now and exit")
    retrain.add_argument("--share", type=float, default=0.1, help="challenger's traffic share (default: 0.1)")
    retrain.add_argument(
        "--tolerance", type=float, default=0.02, help="reject a candidate whose NDCG@10 is this much (relative) worse"
    )
    retrain.add_argument("--cold", action="store_true", help="do not warm-start from the serving version")
    retrain.set_defaults(run=run_retrain)

    keys = commands.add_parser("keys", help="create and list API keys")
    add_service_arguments(keys)
    keys.add_argument("action", choices=("create", "list", "revoke"))
    keys.add_argument("--scope", action="append", choices=("read", "write", "admin"), help="scope, repeatable")
    keys.add_argument("--rate", type=int, default=6000, help="requests per minute for the new key (default: 6000)")
    keys.add_argument("--key-id", help="key id to revoke")
    keys.set_defaults(run=run_keys)


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"models folder (default: {DEFAULT_MODELS})")
    parser.add_argument("--store", help="database URL (default: sqlite in the models folder)")
    parser.add_argument("--redis", help="redis:// URL for live state shared by workers (default: read the store)")


def _data_optional(parser: argparse.ArgumentParser) -> None:
    """``train`` takes DATA or ``--store``: its DATA positional may be left out (checked in run_train)."""
    for action in parser._actions:
        if action.dest == "data":
            action.nargs, action.default = "?", None


def run_train(args: argparse.Namespace) -> int:
    from shoprec.service.versions import train_version

    if bool(args.data) == bool(args.store):
        raise ShoprecError("give a dataset (DATA) or --store URL to train from, not both or neither")
    config_text = None
    if args.config:
        if not Path(args.config).exists():
            raise ShoprecError(f"{args.config}: no such pipeline config file")
        config_text = Path(args.config).read_text(encoding="utf-8")
    if args.store:
        return _train_from_store(args, config_text)
    dataset = load_data(args)
    path = train_version(dataset, args.models, config_text, args.encoder, evaluate=not args.no_eval, progress=True)
    _print_version(path)
    return 0


def _train_from_store(args: argparse.Namespace, config_text: str | None) -> int:
    """``train --store``: the lineage's base + the store's data since; says so when nothing is new."""
    from shoprec.service.store import open_store
    from shoprec.service.trainstore import dataset_from_store
    from shoprec.service.versions import newest_version, read_manifest, train_version

    previous = newest_version(args.models)
    store = open_store(args.store)
    try:
        dataset, report = dataset_from_store(store, args.models)
    finally:
        store.close()
    for line in report.lines():
        print(f"  {line}")
    if not report.has_new_data:
        print(report.no_new_data_message() + ": no version trained")
        return 0
    print(f"loaded {dataset!r}")
    for line in dataset.report.lines():
        print(f"  {line}")
    if config_text is None:
        config_text = (previous / "pipeline.toml").read_text(encoding="utf-8")
    encoder = args.encoder if args.encoder != "auto" else read_manifest(previous).get("encoder", "auto")
    path = train_version(  # the newest version's encoder: warm-started text projections need the same vectors
        dataset,
        args.models,
        config_text,
        encoder,
        evaluate=not args.no_eval,
        progress=True,
        vector_cache=Path(args.models) / "vector-cache",
        lineage=report.lineage(),
        warm_from=None if args.cold else previous,
    )
    _print_version(path)
    return 0


def _print_version(path: Path) -> None:
    from shoprec.service.versions import read_manifest

    manifest = read_manifest(path)
    print(f"wrote model version {manifest['version']} to {path} in {manifest['train_seconds']:.0f} s")
    for label, scores in manifest["metrics"].items():
        if isinstance(scores, dict):
            print(f"  {label:<24} " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    for note in manifest["notes"]:
        print(f"  note: {note}")
    for source, how in manifest.get("warm_start", {}).items():
        print(f"  {source}: {how}")


def settings_from(args: argparse.Namespace, **extra):
    from shoprec.service.settings import ServiceSettings

    return ServiceSettings.from_env(models_dir=args.models, store_url=args.store, redis_url=args.redis, **extra)


def run_serve(args: argparse.Namespace) -> int:
    settings = settings_from(
        args,
        auth=False if args.no_auth else None,
        cors_origins=[o.strip() for o in args.cors.split(",") if o.strip()] if args.cors else None,
        search_dense=False if args.no_search_dense else None,
        search_ranker=args.search_ranker,
        search_cross_encoder=args.search_cross_encoder,
        search_merch=args.search_merch,
        retrain_every=args.retrain_every,
        retrain_share=args.retrain_share,
    )
    serve(settings, args.host, args.port, args.workers)
    return 0


def run_retrain(args: argparse.Namespace) -> int:
    """``shoprec retrain``: one retrain now (``--once``) or one whenever due, until interrupted."""
    import time

    from shoprec.service.app import store_url
    from shoprec.service.retrain import retrain_once
    from shoprec.service.schedule import RetrainScheduler, parse_duration
    from shoprec.service.store import open_store
    from shoprec.service.versions import newest_version

    every = parse_duration(args.every, "--every")
    newest_version(args.models)  # a clear error now when there is nothing to retrain from
    options = {"share": args.share, "tolerance": args.tolerance, "warm": not args.cold}
    store = open_store(store_url(settings_from(args)))
    try:
        if args.once:
            result = retrain_once(args.models, store, progress=True, **options)
            print(f"{result.action}: {result.message}", flush=True)
            return 0
        scheduler = RetrainScheduler(args.models, store, every, **options)
        print(f"retraining {args.models} from {store.url} every {args.every} (Ctrl-C stops)", flush=True)
        while True:
            result = scheduler.run_if_due()
            if result is not None:
                print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {result.action}: {result.message}", flush=True)
            time.sleep(min(max(scheduler.due_in(), 1.0), 300.0))
    finally:
        store.close()


def serve(settings, host: str, port: int, workers: int = 1) -> None:
    """Run uvicorn on the app factory; workers > 1 fork processes that share the store (and Redis)."""
    import os

    import uvicorn

    from shoprec.service.versions import newest_version

    newest_version(settings.models_dir)  # a clear error now instead of a service that is never ready
    for field, value in vars(settings).items():  # workers rebuild the settings from the environment
        if value is not None:
            os.environ[f"SHOPREC_{field.upper()}"] = ",".join(value) if isinstance(value, list) else str(value)
    print(f"serving {settings.models_dir} on http://{host}:{port} (API /docs, dashboard /dashboard)", flush=True)
    uvicorn.run(
        "shoprec.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


def run_keys(args: argparse.Namespace) -> int:
    from shoprec.service.app import store_url
    from shoprec.service.auth import create_key
    from shoprec.service.store import open_store

    settings = settings_from(args)
    Path(settings.models_dir).mkdir(parents=True, exist_ok=True)
    store = open_store(store_url(settings))
    try:
        if args.action == "create":
            key = create_key(store, args.scope or ["read"], args.rate)
            print(key)
            print("store this key now: only its hash is kept", flush=True)
        elif args.action == "list":
            for record in store.list_api_keys():
                state = "revoked" if record.revoked else "active"
                print(f"{record.key_id}  {','.join(record.scopes):<16} {record.rate_per_minute}/min  {state}")
        else:
            if not args.key_id:
                raise ShoprecError("give --key-id of the key to revoke (see 'shoprec keys list')")
            record = store.get_api_key(args.key_id)
            if record is None:
                raise ShoprecError(f"no key with id {args.key_id!r}")
            from dataclasses import replace

            store.put_api_key(replace(record, revoked=True))
            print(f"revoked {args.key_id}")
    finally:
        store.close()
    return 0
