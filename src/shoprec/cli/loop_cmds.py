"""The feedback loop's sub-commands that work on the store: ``shoprec forget`` (and those other
helpers add here). Each command is added by its own function; :func:`add_commands` calls them all."""

from __future__ import annotations

import argparse

from shoprec.cli.service_cmds import DEFAULT_MODELS


def add_commands(commands: argparse._SubParsersAction) -> None:
    add_forget_command(commands)
    add_evaluate_logs_command(commands)


def add_forget_command(commands: argparse._SubParsersAction) -> None:
    forget = commands.add_parser(
        "forget",
        help="forget a shopper: remove their data from the store and Redis, never train on them again",
        description="Remove the user's events, impressions and searches from the store and their live state "
        "from Redis, record them as forgotten (running services serve them as anonymous shoppers within a "
        "second; later training sets leave them out) and audit it as 'cli'. A user neither the store nor any "
        "version in --models knows is an error.",
    )
    forget.add_argument("user", help="the user id, exactly as events carry it")
    forget.add_argument("--models", default=DEFAULT_MODELS, help=f"models folder (default: {DEFAULT_MODELS})")
    forget.add_argument("--store", help="database URL (default: sqlite in the models folder)")
    forget.add_argument("--redis", help="redis:// URL of the services' live state, when they use Redis")
    forget.add_argument("--redis-prefix", default="shoprec", help="the services' Redis key prefix (default: shoprec)")
    forget.set_defaults(run=run_forget)


def run_forget(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shoprec.service.forget import forget_user, trained_on
    from shoprec.service.live_redis import open_live
    from shoprec.service.store import open_store

    store = open_store(args.store, Path(args.models) / "shoprec.db")
    try:
        live = open_live(args.redis, store, prefix=args.redis_prefix) if args.redis else None
        try:
            report = forget_user(store, live, args.user, "cli", lambda u: bool(trained_on(args.models, u)))
        finally:
            if live is not None:
                live.close()
    finally:
        store.close()
    removed = report["removed"]
    print(
        f"forgot user {args.user!r}: removed {removed['events']} events, {removed['impressions']} served lists "
        f"and {removed['searches']} searches from {store.url}"
    )
    if args.redis:
        state = "dropped" if report["live_state_dropped"] else "NOT dropped (Redis failed; run it again)"
        print(f"  live state in Redis: {state}")
    versions = trained_on(args.models, args.user)
    if versions:
        print(
            f"  trained on by {', '.join(versions)}: services serve the user as anonymous; "
            "the next training leaves the user out"
        )
    return 0 if report["live_state_dropped"] else 1


def add_evaluate_logs_command(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate-logs",
        help="estimate a version's click-through from logged exploration (IPS, SNIPS) before serving it",
        description="Re-rank each logged home feed's shopper with --version and estimate the click-through per "
        "shown slot that version would have had, from the impressions logged with exploration "
        "(SHOPREC_EXPLORE_SHARE): IPS and self-normalised IPS with 95%% intervals, effective sample size and the "
        "share of its slots the logs do not support, next to the serving versions' measured click-through.",
    )
    evaluate.add_argument("--version", required=True, help="the version to evaluate, e.g. v0003")
    evaluate.add_argument("--baseline", help="also estimate this version from the same logs, e.g. v0002")
    evaluate.add_argument("--models", default=DEFAULT_MODELS, help=f"models folder (default: {DEFAULT_MODELS})")
    evaluate.add_argument("--store", help="database URL (default: sqlite in the models folder)")
    evaluate.add_argument("--since", type=_moment, help="only lists logged from then: epoch seconds or ISO date/time")
    evaluate.add_argument("--until", type=_moment, help="only lists logged before then")
    evaluate.add_argument("--pool", type=int, default=40, help="the service's exploration pool (default: 40)")
    evaluate.add_argument(
        "--target-share", type=float, default=0.0, help="evaluate the version served with this exploration share"
    )
    evaluate.add_argument("--bootstrap", type=int, default=0, help="bootstrap replicates for the intervals (0: normal)")
    evaluate.set_defaults(run=run_evaluate_logs)


def _moment(text: str) -> float:
    from datetime import UTC, datetime

    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is neither epoch seconds nor an ISO date/time") from err
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def run_evaluate_logs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shoprec.service.evaluate_logs import describe, evaluate_logs
    from shoprec.service.store import open_store

    store = open_store(args.store, Path(args.models) / "shoprec.db")
    options = dict(since=args.since, until=args.until, pool=args.pool, target_share=args.target_share)
    try:
        report = evaluate_logs(args.models, store, args.version, bootstrap=args.bootstrap, **options)
        baseline = evaluate_logs(args.models, store, args.baseline, **options) if args.baseline else None
    finally:
        store.close()
    print("\n".join(describe(report, baseline)))
    return 0
