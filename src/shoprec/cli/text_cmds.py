"""``shoprec finetune`` (fit the text encoder to a shop), ``shoprec encode`` (item vectors to a file) and
``shoprec tags`` (item tags saved with the catalogue)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from shoprec.cli.common import add_data_arguments, load_data
from shoprec.errors import ShoprecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    _add_finetune(commands)
    _add_encode(commands)
    _add_tags(commands)


def _add_finetune(commands: argparse._SubParsersAction) -> None:
    from shoprec.text.finetune import FinetuneSettings

    defaults = FinetuneSettings()
    parser = commands.add_parser(
        "finetune",
        help="fine-tune the MiniLM text encoder on a shop's baskets, sessions and searches",
        description="Mine positive pairs (items bought together, consecutive items of a session, search query "
        "-> clicked item), train the encoder contrastively with in-batch negatives, compare held-out "
        "item-to-item retrieval before and after, and write a model folder usable as --encoder DIR.",
    )
    add_data_arguments(parser)
    parser.add_argument("--base", default="minilm", help="model to start from: minilm or a model folder")
    parser.add_argument("--out", default="shoprec-out/finetuned", help="model folder to write")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the pairs (default: 1)")
    parser.add_argument("--max-pairs", type=int, default=defaults.max_pairs, help="pair budget (default: 20000)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="pairs per step (default: 32)")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="default: 2e-5")
    parser.add_argument(
        "--held-out", type=float, default=defaults.held_out, help="share of pairs for the check (default: 0.1)"
    )
    parser.add_argument(
        "--max-per-item", type=int, default=defaults.max_per_item, help="pairs per item at most (default: 50)"
    )
    parser.add_argument(
        "--session-gap",
        type=_minutes,
        default=defaults.session_gap,
        help="minutes of quiet that end a session when events have no session id; 'none': one session per "
        "user (default: 30)",
    )
    parser.add_argument("--max-length", type=int, default=defaults.max_length, help="tokens per text (default: 128)")
    parser.add_argument("--train-seed", type=int, default=defaults.seed, help="seed for pairs and training")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads (default: 2)")
    parser.set_defaults(run=run_finetune)


def _add_encode(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "encode",
        help="encode every item's text into a vector file (.npy), reusing a vector cache",
        description="Build each item's text (title, description, category, brand, review digest), encode it "
        "and save an (items x dim) float32 .npy file plus the item ids in the same order (.ids.txt).",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--encoder",
        default="auto",
        help="minilm, minilm-int8, use-multilingual, auto or a model folder (default: auto)",
    )
    parser.add_argument("--cache", default=None, help="vector cache folder: only new or changed texts are encoded")
    parser.add_argument("--out", default="shoprec-out/vectors.npy", help="output .npy file")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per encoder call (default: 64)")
    parser.set_defaults(run=run_encode)


def _minutes(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        minutes = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of minutes or 'none'") from None
    if minutes <= 0:
        raise argparse.ArgumentTypeError(f"session gap must be positive, got {text}")
    return minutes * 60.0


def run_finetune(args: argparse.Namespace) -> int:
    from shoprec.text.finetune import FinetuneSettings, finetune

    settings = FinetuneSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_pairs=args.max_pairs,
        held_out=args.held_out,
        max_per_item=args.max_per_item,
        session_gap=args.session_gap,
        max_length=args.max_length,
        seed=args.train_seed,
        threads=args.threads,
    )
    dataset = load_data(args)
    result = finetune(dataset, args.out, base=args.base, settings=settings, progress=True)
    print("pairs by source (mined / unique / kept):")
    for source, counts in result.pairs.items():
        print(f"  {source:<8} {counts['mined']:>10,} {counts['unique']:>10,} {counts['kept']:>8,}")
    stats = result.pair_stats
    print(
        f"  train {stats['train']:,}, held out {stats['held_out']:,} ({stats['held_out_anchors']:,} anchors); "
        f"skipped by the per-item cap {stats['capped']:,}, bulk orders skipped {stats['baskets_too_large']:,}"
    )
    print(f"trained {result.steps:,} steps in {result.seconds['training']:.0f} s, loss {result.losses[-1]:.3f}")
    print("held-out retrieval over the whole catalogue:   before   after")
    for metric in ("recall@10", "mrr"):
        print(f"  {metric:<44} {result.before[metric]:6.3f}  {result.after[metric]:6.3f}")
    print(f"model written to {result.out_dir} (use it with --encoder {result.out_dir})")
    return 0


def run_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from shoprec.text.encoders import load_encoder
    from shoprec.text.itemtext import item_texts
    from shoprec.text.vectors import VectorCache, encoder_version, item_vectors

    out = Path(args.out)
    if out.suffix != ".npy":
        raise ShoprecError(f"--out {out}: the vector file must end in .npy")
    if args.batch_size < 1:
        raise ShoprecError(f"--batch-size must be at least 1, got {args.batch_size}")
    dataset = load_data(args)
    texts = item_texts(dataset)
    for line in texts.lines():
        print(f"  item texts: {line}")
    encoder = load_encoder(args.encoder, sample_texts=texts.texts)
    print(f"encoder: {encoder.name} ({encoder.dim}-d)")
    cache = VectorCache(args.cache, encoder.name, version=encoder_version(encoder)) if args.cache else None
    started = time.perf_counter()
    vectors = item_vectors(dataset, encoder, cache_dir=cache, progress=True, batch_size=args.batch_size, texts=texts)
    seconds = time.perf_counter() - started
    stats = cache.last_stats if cache else {"unique": len(set(texts.texts)), "hits": 0, "misses": len(texts)}
    encoded = stats["misses"]
    rate = f", {encoded / seconds:,.0f} texts/s" if encoded and seconds > 0 else ""
    print(
        f"{len(texts):,} items, {stats['unique']:,} distinct texts: {stats['hits']:,} from the cache, "
        f"{encoded:,} encoded in {seconds:.1f} s{rate}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors)
    ids = out.with_suffix(".ids.txt")
    ids.write_text("\n".join(dataset.item_vocab.ids()) + "\n")
    print(f"vectors {vectors.shape[0]:,} x {vectors.shape[1]} written to {out}, item ids to {ids}")
    return 0


def _add_tags(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "tags",
        help="extract each item's tags (key phrases, category, brand) and save them with the catalogue",
        description="Rank candidate phrases from each item's own text against its vector (KeyBERT-style, with "
        "MMR for variety), add the category leaf and brand, and write the dataset folder with a 'tags' "
        "column in items.parquet (read back by every command that takes a dataset folder).",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--encoder",
        default="auto",
        help="minilm, minilm-int8, use-multilingual, auto or a model folder (default: auto)",
    )
    parser.add_argument("--top-n", type=int, default=5, help="key phrases per item, before category and brand")
    parser.add_argument(
        "--diversity", type=float, default=0.4, help="MMR trade-off: 0 = most relevant, 1 = most varied"
    )
    parser.add_argument("--cache", default=None, help="vector cache folder: only new or changed texts are encoded")
    parser.add_argument("--out", default="shoprec-out/tagged", help="dataset folder to write")
    parser.add_argument("--show", type=int, default=5, help="print the tags of this many items (default: 5)")
    parser.set_defaults(run=run_tags)


def run_tags(args: argparse.Namespace) -> int:
    from shoprec.text.encoders import load_encoder
    from shoprec.text.itemtext import item_texts
    from shoprec.text.tags import extract_tags, with_tags
    from shoprec.text.vectors import VectorCache, encoder_version, item_vectors

    if args.top_n < 1:
        raise ShoprecError(f"--top-n must be at least 1, got {args.top_n}")
    if not 0.0 <= args.diversity <= 1.0:
        raise ShoprecError(f"--diversity must be between 0 and 1, got {args.diversity}")
    dataset = load_data(args)
    texts = item_texts(dataset)
    encoder = load_encoder(args.encoder, sample_texts=texts.texts)
    print(f"encoder: {encoder.name} ({encoder.dim}-d)")
    cache = VectorCache(args.cache, encoder.name, version=encoder_version(encoder)) if args.cache else None
    started = time.perf_counter()
    vectors = item_vectors(dataset, encoder, cache_dir=cache, progress=True, texts=texts)
    tags = extract_tags(dataset, encoder, vectors, top_n=args.top_n, diversity=args.diversity, progress=True)
    seconds = time.perf_counter() - started
    tagged = with_tags(dataset, tags)
    out = tagged.save(args.out)
    empty = sum(1 for t in tags if not t)
    print(f"tagged {len(tags):,} items in {seconds:.1f} s ({empty:,} without any tag)")
    titles = dataset.items["title"].astype(str).tolist()
    for i in range(min(args.show, len(tags))):
        print(f"  {titles[i][:50]:<50}  {', '.join(tags[i])}")
    print(f"dataset with tags written to {out}")
    return 0
