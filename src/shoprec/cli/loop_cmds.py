"""The feedback loop's sub-commands: ``shoprec forget`` (and, added by their owners, ``retrain`` and
``evaluate-logs``). Each command is added by its own function; :func:`add_commands` calls them all."""

from __future__ import annotations

import argparse

from shoprec.cli.service_cmds import DEFAULT_MODELS


def add_commands(commands: argparse._SubParsersAction) -> None:
    add_forget_command(commands)


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
