"""``shoprec bundle``: a bundle of products that go together, for an item, a cart, a shopper or an intent.

shoprec bundle demo --item P00007 --budget 150 --size 2-4
shoprec bundle shop/ --item A12 --item B7 --solver genetic --language zh
shoprec bundle demo --intent "camera accessories" --encoder minilm --size 3
"""

from __future__ import annotations

import argparse
import json

from shoprec.cli.common import add_data_arguments, load_data
from shoprec.errors import ShoprecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bundle",
        help="recommend a bundle of complementary products (greedy, local search, genetic or exact solver)",
        description="Fit the complement model on the data, then choose a set of items that go with the anchor "
        "(items, a user's history or an intent) under the constraints, and say why each belongs.",
    )
    add_data_arguments(parser)
    parser.add_argument("--item", action="append", default=[], help="anchor item id (repeat for a cart)")
    parser.add_argument("--user", default=None, help="anchor on this user's recent history")
    parser.add_argument("--intent", default=None, help='free-text intent, e.g. "home office setup" (needs --encoder)')
    parser.add_argument("--size", default="2-4", type=_size, help="bundle size N or MIN-MAX, anchors included")
    parser.add_argument("--budget", type=float, default=None, help="most the whole bundle may cost")
    parser.add_argument("--allow-repeats", action="store_true", help="allow several items of one category")
    parser.add_argument("--mix", default=None, help='exact category mix as JSON, e.g. \'{"A > B": 1, "C > D": 2}\'')
    parser.add_argument("--require", action="append", default=[], help="item id that must be in the bundle")
    parser.add_argument("--exclude", action="append", default=[], help="item id that must not be in the bundle")
    parser.add_argument("--require-category", action="append", default=[], help="category the bundle must hold")
    parser.add_argument("--exclude-category", action="append", default=[], help="category the bundle must not hold")
    parser.add_argument("--include-out-of-stock", action="store_true", help="allow items marked out of stock")
    parser.add_argument("--solver", default="greedy", choices=("greedy", "local", "genetic", "exact"))
    parser.add_argument("--solver-seed", type=int, default=0, help="seed of the genetic solver (default: 0)")
    parser.add_argument("--language", default="en", choices=("en", "zh"), help="language of the explanations")
    parser.add_argument("--encoder", default=None, help="text encoder for text evidence and intents (default: none)")
    parser.add_argument("--cache", default=None, help="vector cache folder for --encoder")
    parser.add_argument("--json", action="store_true", help="print the bundle as JSON")
    parser.set_defaults(run=run_bundle)


def _size(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        lo, hi = int(low), int(high) if sep else int(low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size takes N or MIN-MAX (e.g. 3 or 2-4), not '{text}'") from None
    return lo, hi


def _mix(text: str | None) -> dict[str, int] | None:
    if text is None:
        return None
    try:
        mix = json.loads(text)
    except json.JSONDecodeError as err:
        raise ShoprecError(f"--mix must be a JSON object of category -> count: {err}") from None
    if not isinstance(mix, dict):
        raise ShoprecError('--mix must be a JSON object of category -> count, e.g. {"A > B": 1}')
    return mix


def run_bundle(args: argparse.Namespace) -> int:
    from shoprec.bundles.api import recommend_bundle
    from shoprec.bundles.recommender import BundleRecommender
    from shoprec.bundles.solvers import SolverConfig

    if args.intent and not args.encoder:
        raise ShoprecError("--intent needs --encoder (minilm, minilm-int8, use-multilingual or a model folder)")
    dataset = load_data(args)
    vectors, encode = None, None
    if args.encoder:
        from shoprec.text.encoders import load_encoder
        from shoprec.text.vectors import item_vectors

        encoder = load_encoder(args.encoder)
        vectors = item_vectors(dataset, encoder, cache_dir=args.cache)
        encode = encoder.encode
    rec = BundleRecommender(solver_config=SolverConfig(seed=args.solver_seed), encode=encode).fit(dataset, vectors)
    out = recommend_bundle(
        rec,
        items=args.item,
        user=args.user,
        intent=args.intent,
        min_size=args.size[0],
        max_size=args.size[1],
        budget=args.budget,
        one_per_category=not args.allow_repeats,
        category_mix=_mix(args.mix),
        required_items=args.require,
        excluded_items=args.exclude,
        required_categories=args.require_category,
        excluded_categories=args.exclude_category,
        in_stock_only=not args.include_out_of_stock,
        solver=args.solver,
        language=args.language,
    )
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(out["summary"])
    for row in out["items"]:
        price = "   n/a" if row["price"] is None else f"{row['price']:>8.2f}"
        print(f"  {row['role']:<6} {row['item_id']:<12} {price}  {row['title'][:60]}")
        print(f"         {row['category']}  -  {row['reason']}")
    optimal = " (proven optimal)" if out["optimal"] else ""
    print(f"solver {out['solver']}{optimal}, objective {out['value']:.3f}")
    for note in out["notes"]:
        print(f"note: {note}")
    return 0
