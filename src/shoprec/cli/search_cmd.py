"""``shoprec search``: search a shop's catalogue and print the understood query and the results."""

from __future__ import annotations

import argparse
import math

from shoprec.cli.common import add_data_arguments, load_data
from shoprec.errors import ShoprecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "search",
        help="search a catalogue: query understanding, BM25, optional dense retrieval, constraints",
        description="Parse the query (price bounds, brands and category words the catalogue knows), correct "
        "misspelt words, retrieve with BM25 (and, with --encoder, dense vectors), fuse by reciprocal rank "
        "and apply the constraints exactly, relaxing them when nothing is left.",
    )
    add_data_arguments(parser)
    parser.add_argument("query", help='what to search for, e.g. "cordless drill under 100" or "不粘锅"')
    parser.add_argument("-k", type=int, default=10, help="results to show (default: 10)")
    parser.add_argument("--offset", type=int, default=0, help="results to skip first, for paging (default: 0)")
    parser.add_argument(
        "--merch",
        default=None,
        help="merchandising TOML: synonyms and per-query pins, boosts, buries and blocks (see docs/search.md)",
    )
    parser.add_argument("--facets", type=int, default=5, help="values shown per facet (default: 5; 0: none)")
    parser.add_argument(
        "--encoder",
        default="none",
        help="none (lexical only, the default), minilm, minilm-int8, use-multilingual (Chinese and English), "
        "auto or a model folder; every item is encoded, so use --cache for repeated runs",
    )
    parser.add_argument("--cache", default=None, help="vector cache folder: only new or changed item texts are encoded")
    parser.add_argument("--lang", choices=("en", "zh"), default=None, help="language of the constraint summary")
    parser.set_defaults(run=run_search)


def run_search(args: argparse.Namespace) -> int:
    from shoprec.search.hybrid import SearchEngine

    if args.k < 1:
        raise ShoprecError(f"-k must be at least 1, got {args.k}")
    if args.offset < 0:
        raise ShoprecError(f"--offset must be 0 or more, got {args.offset}")
    if args.facets < 0:
        raise ShoprecError(f"--facets must be 0 or more, got {args.facets}")
    if not args.query.strip():
        raise ShoprecError("the search query is empty: give some words to search for, e.g. \"coffee mug\"")
    dataset = load_data(args)
    encoder = None
    if args.encoder != "none":
        from shoprec.text.encoders import load_encoder

        encoder = load_encoder(args.encoder, dataset.items["title"].dropna().astype(str).head(1000).tolist())
    merch = None
    if args.merch is not None:
        from shoprec.search.merch import Merchandising

        merch = Merchandising.from_toml(args.merch)
    engine = SearchEngine.from_dataset(dataset, encoder=encoder, cache_dir=args.cache, merch=merch)
    for warning in engine.merch_warnings:
        print(f"warning: {warning}")
    result = engine.search(args.query, k=args.k, offset=args.offset)
    print_result(result, args.lang or ("zh" if result.query.language == "zh" else "en"), args.facets)
    return 0


def print_result(result, lang: str, facets: int = 5) -> None:  # noqa: ANN001 - a SearchResult
    from shoprec.search.explain import explain_hit

    query = result.query
    print(f"query: {query.text}  (language: {query.language}{', mixed scripts' if query.mixed else ''})")
    print(f"understood: {query.describe(lang) or '-'}")
    print(f"terms searched (stemmed): {' '.join(query.terms) or '-'}")
    for note in result.notes:
        print(f"note: {note}")
    for note in query.notes:
        print(f"note: {note}")
    first, last = result.offset + 1, result.offset + len(result.hits)
    print(f"results {first}-{last} of {result.total}" if result.hits else f"no results (of {result.total})")
    for n, hit in enumerate(result.hits, start=first):
        p = hit.product
        price = "-" if math.isnan(p.price) else f"{p.price:.2f}"
        sources = ", ".join(f"{name} #{s.rank} {s.score:.3f}" for name, s in hit.sources.items())
        shares = ", ".join(f"{name} {100 * share:.0f}%" for name, share in hit.shares.items())
        matched = ", ".join(hit.matched) or "-"
        print(f"{n:>3}. {hit.item_id}  {p.title[:70]}  | {price} | {p.brand or '-'} | {sources} | matched: {matched}")
        print(f"       why: {explain_hit(hit, result, lang) or '-'}  | score shares: {shares or '-'}")
    if facets and result.facets:
        for name, counts in result.facets.items():
            shown = ", ".join(f"{value} ({count})" for value, count in counts[:facets])
            more = f", ... {len(counts) - facets} more" if len(counts) > facets else ""
            print(f"facet {name}: {shown or '-'}{more}")
