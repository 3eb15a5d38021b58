"""Fine-tune a sentence-transformers encoder (MiniLM by default) on a shop's own behaviour.

Positive pairs come from :func:`shoprec.text.pairs.mine_pairs` (co-bought items, consecutive items of
a session, query -> clicked item). Training is contrastive with in-batch negatives
(``MultipleNegativesRankingLoss``): each anchor should be closer to its own positive than to the other
positives of the batch. Batches never hold the same item or query twice, so no negative is a copy of a
positive. The loop is a plain PyTorch one (AdamW, linear warm-up then decay, gradient clipping): the
sentence-transformers trainer needs the ``datasets`` and ``accelerate`` packages and brings hub and
logging integrations that have no place in an offline tool.

Before and after training, the held-out pairs are scored: for each held-out anchor, every catalogue
item is ranked by cosine similarity (the anchor itself left out); Recall@10 and MRR of its positives.
The result is a model folder that :func:`shoprec.text.load_encoder` loads, plus ``finetune.json``.

>>> result = finetune(dataset, base="minilm", out_dir="models/shop-minilm")    # doctest: +SKIP
>>> result.before["recall@10"], result.after["recall@10"]                     # doctest: +SKIP
(0.313, 0.342)
>>> encoder = load_encoder("models/shop-minilm")                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.text.encoders import ENCODERS, minilm_folder
from shoprec.text.itemtext import item_texts
from shoprec.text.pairs import SOURCES, Pairs, mine_pairs

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

RESULT_FILE = "finetune.json"
EVAL_K = 10
EVAL_BLOCK = 512  # held-out pairs scored against the catalogue at a time
LENGTH_GROUP = 50  # batches per group sorted by length when group_by_length is on


@dataclass(frozen=True)
class FinetuneSettings:
    """Everything that shapes a fine-tuning run (written to ``finetune.json``)."""

    epochs: int = 1  # passes over the training pairs
    batch_size: int = 32  # pairs per step; the other positives of a batch are the negatives
    learning_rate: float = 2e-5  # AdamW peak learning rate
    warmup: float = 0.1  # share of the steps spent warming the learning rate up from 0
    max_pairs: int = 20_000  # pair budget over all sources (train + held-out)
    held_out: float = 0.1  # about this share of the pairs is held out for the before/after check
    max_per_item: int = 50  # an item appears in at most this many pairs
    min_count: int = 2  # pairs seen this often are taken before the rest (then by association strength)
    session_gap: float | None = 1800.0  # seconds between events that split a session without session ids
    max_length: int = 128  # tokens per text; longer texts are cut (also when the model is used later)
    seed: int = 0  # seeds pair sampling, batching, dropout and initialisation
    threads: int = 2  # torch CPU threads
    group_by_length: bool = True  # batch texts of similar length together (much less padding, same pairs)


@dataclass
class FinetuneResult:
    """What a run did: the model folder, pair counts, held-out metrics before and after, timings."""

    out_dir: Path
    base: str
    settings: FinetuneSettings
    pairs: dict[str, dict[str, int]]
    pair_stats: dict[str, int]
    before: dict[str, float]
    after: dict[str, float]
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        return out


def finetune(
    dataset: Dataset,
    out_dir: str | Path,
    base: str = "minilm",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    max_pairs: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    settings: FinetuneSettings | None = None,
) -> FinetuneResult:
    """Mine pairs from ``dataset``, fine-tune ``base`` ("minilm" or a model folder), write ``out_dir``.

    ``settings`` holds every knob (defaults: :class:`FinetuneSettings`); the common ones can also be
    given as arguments, which override ``settings``. Raises ShoprecError when the base is not
    fine-tunable, ``out_dir`` holds something else, or the dataset yields no pairs.
    """
    given = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "max_pairs": max_pairs}
    given["seed"] = seed
    settings = replace(settings or FinetuneSettings(), **{k: v for k, v in given.items() if v is not None})
    _check_settings(settings)
    folder = resolve_base(base)
    out_dir = _check_out_dir(Path(out_dir))
    clock = [time.perf_counter()]
    pairs = mine_pairs(
        dataset,
        max_pairs=settings.max_pairs,
        seed=settings.seed,
        held_out=settings.held_out,
        max_per_item=settings.max_per_item,
        session_gap=settings.session_gap,
        min_count=settings.min_count,
    )
    check_pairs(pairs)
    texts = item_texts(dataset).texts
    clock.append(time.perf_counter())
    with torch_threads(settings.threads):
        model = load_trainable(folder, settings)
        before = evaluate_pairs(model, texts, pairs.holdout(), progress=progress)
        clock.append(time.perf_counter())
        losses, steps = train(model, pairs.train(), texts, settings, progress=progress)
        clock.append(time.perf_counter())
        after = evaluate_pairs(model, texts, pairs.holdout(), progress=progress)
        clock.append(time.perf_counter())
        model.save(str(out_dir), create_model_card=False)
    stages = ("mining", "before", "training", "after")
    seconds = {stage: clock[i + 1] - clock[i] for i, stage in enumerate(stages)}
    seconds["total"] = time.perf_counter() - clock[0]
    result = FinetuneResult(out_dir, base, settings, pairs.counts, pairs.stats, before, after, losses, steps, seconds)
    (out_dir / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    return result


def _check_settings(settings: FinetuneSettings) -> None:
    for name in ("epochs", "batch_size", "max_pairs", "max_length", "max_per_item", "min_count", "threads"):
        if getattr(settings, name) < 1:
            raise ShoprecError(f"{name} must be at least 1, got {getattr(settings, name)}")
    if settings.batch_size < 2:
        raise ShoprecError("batch_size must be at least 2: the other pairs of a batch are the negatives")
    if not settings.learning_rate > 0:
        raise ShoprecError(f"learning_rate must be positive, got {settings.learning_rate}")
    if not 0.0 < settings.held_out < 1.0:
        raise ShoprecError(f"held_out must be between 0 and 1, got {settings.held_out}")


def resolve_base(base: str) -> Path:
    """The model folder to start from: the packaged MiniLM for ``"minilm"``, else a local folder."""
    if base == "minilm":
        return minilm_folder()
    if base in ENCODERS or base == "auto":
        raise ShoprecError(
            f"encoder '{base}' cannot be fine-tuned. Use --base minilm or a sentence-transformers model folder"
        )
    path = Path(base)
    if not path.is_dir():
        raise ShoprecError(
            f"base model '{base}': no such folder. Give 'minilm' or a sentence-transformers model folder "
            "(for instance one written by 'shoprec finetune')"
        )
    if not (path / "modules.json").is_file():
        raise ShoprecError(
            f"{path}: not a sentence-transformers model folder (no modules.json). Give 'minilm' or a folder "
            "written by 'shoprec finetune' or SentenceTransformer.save"
        )
    return path


def _check_out_dir(path: Path) -> Path:
    """Refuse a file or a non-empty folder, unless the folder holds an earlier fine-tuning result."""
    if path.exists() and not path.is_dir():
        raise ShoprecError(f"{path}: exists and is not a folder. Give a new folder for the model")
    if path.is_dir() and any(path.iterdir()) and not (path / RESULT_FILE).is_file():
        raise ShoprecError(
            f"{path}: folder is not empty and holds no earlier fine-tuned model ({RESULT_FILE}). "
            "Give a new or empty folder so nothing is overwritten"
        )
    return path


def check_pairs(pairs: Pairs) -> None:
    """Raise a ShoprecError naming the empty sources when there is nothing to train or check on."""
    if len(pairs) == 0:
        mined = ", ".join(f"{name}: {pairs.counts[name]['mined']}" for name in SOURCES)
        raise ShoprecError(
            f"no training pairs: the dataset has no baskets with 2+ items, no sessions with 2+ distinct items "
            f"and no search queries with a clicked catalogue item (pairs found per source: {mined}). "
            "Fine-tuning needs orders (purchase events sharing a session_id), browsing events or a queries table"
        )
    if pairs.stats.get("train", 0) == 0 or pairs.stats.get("held_out", 0) == 0:
        raise ShoprecError(
            f"too few pairs to train and check ({len(pairs)} in all: {pairs.stats.get('train', 0)} train, "
            f"{pairs.stats.get('held_out', 0)} held out). Fine-tuning needs more baskets, sessions or queries"
        )


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads, then restore the caller's setting."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_trainable(folder: Path, settings: FinetuneSettings) -> SentenceTransformer:
    """A SentenceTransformer on the CPU from ``folder`` (nothing downloaded), seeded, text cut at max_length."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(settings.seed)
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    model.max_seq_length = settings.max_length
    return model


def train(
    model: SentenceTransformer, pairs: Pairs, texts: list[str], settings: FinetuneSettings, progress: bool = True
) -> tuple[list[float], int]:
    """Contrastive training on ``pairs`` in place; returns (mean loss per epoch, steps taken)."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from tqdm.auto import tqdm

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    anchors, positives = pairs.anchor_texts(texts), [texts[i] for i in pairs.positive.tolist()]
    anchor_keys, positive_keys = pairs.anchor_keys().tolist(), pairs.positive.tolist()
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    lengths = np.array([max(len(a), len(p)) for a, p in zip(anchors, positives, strict=True)])
    epochs = [epoch_batches(rng, lengths, anchor_keys, positive_keys, settings) for _ in range(settings.epochs)]
    total = sum(len(batches) for batches in epochs)
    warmup = max(1, int(settings.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    model.train()
    losses, steps = [], 0
    bar = tqdm(total=total, desc="fine-tuning", unit="step", disable=not progress)
    for batches in epochs:
        epoch_losses = []
        for batch in batches:
            features = [model.preprocess([anchors[i] for i in batch]), model.preprocess([positives[i] for i in batch])]
            loss = loss_fn(features, None)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            epoch_losses.append(float(loss.detach()))
            steps += 1
            bar.update()
            bar.set_postfix(loss=f"{np.mean(epoch_losses[-50:]):.3f}")
        losses.append(float(np.mean(epoch_losses)) if epoch_losses else 0.0)
    bar.close()
    model.eval()
    return losses, steps


def epoch_batches(
    rng: np.random.Generator, lengths: np.ndarray, anchor_keys: list, positive_keys: list, settings: FinetuneSettings
) -> list[list[int]]:
    """One epoch's batches in random order. With ``group_by_length``, pairs are shuffled, cut into groups
    of ``LENGTH_GROUP`` batches and sorted by text length inside a group, so a batch pads its texts to a
    similar length (a step costs what its longest text costs)."""
    order = rng.permutation(len(lengths))
    if settings.group_by_length:
        span = settings.batch_size * LENGTH_GROUP
        order = np.concatenate(
            [
                chunk[np.argsort(-lengths[chunk], kind="stable")]
                for chunk in np.split(order, range(span, len(order), span))
            ]
        )
    batches = list(distinct_batches(order, anchor_keys, positive_keys, settings.batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def distinct_batches(order: np.ndarray, anchor_keys: list, positive_keys: list, size: int) -> Iterator[list[int]]:
    """Batches of pair positions in ``order`` where no anchor key or positive item occurs twice.

    A pair that clashes with the open batch waits and is tried first for the next one, so the order is
    kept as far as it can be; pairs that clash with everything end up in small final batches.
    """
    waiting: deque[int] = deque()
    pending = iter(order.tolist())
    while True:
        batch: list[int] = []
        seen: set = set()
        for _ in range(len(waiting)):  # the waiting pairs first, each tried once per batch
            if len(batch) == size:
                break
            _place(waiting.popleft(), batch, seen, waiting, anchor_keys, positive_keys)
        while len(batch) < size and (i := next(pending, None)) is not None:
            _place(i, batch, seen, waiting, anchor_keys, positive_keys)
        if not batch:
            return
        yield batch


def _place(i: int, batch: list[int], seen: set, waiting: deque, anchor_keys: list, positive_keys: list) -> None:
    """Add pair ``i`` to ``batch`` unless its anchor or positive is already there (then it waits)."""
    if anchor_keys[i] in seen or positive_keys[i] in seen:
        waiting.append(i)
        return
    batch.append(i)
    seen.add(anchor_keys[i])
    seen.add(positive_keys[i])


def evaluate_pairs(
    model: SentenceTransformer, texts: list[str], pairs: Pairs, k: int = EVAL_K, progress: bool = False
) -> dict[str, float]:
    """Recall@k and MRR of held-out positives when each anchor ranks the whole catalogue (itself left out).

    Averaged per anchor (an anchor's relevant items are all its positives); also per source.
    """
    items = model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=progress)
    keys = pairs.anchor_keys()
    _, first, anchor_row = np.unique(keys.astype(str), return_index=True, return_inverse=True)
    anchor_texts = pairs.anchor_texts(texts)
    anchor_vectors = model.encode(
        [anchor_texts[i] for i in first], batch_size=64, normalize_embeddings=True, show_progress_bar=False
    )
    ranks = np.zeros(len(pairs), dtype=np.int64)
    for start in range(0, len(pairs), EVAL_BLOCK):
        block = slice(start, start + EVAL_BLOCK)
        scores = anchor_vectors[anchor_row[block]] @ items.T  # (B, n_items)
        rows = np.arange(scores.shape[0])
        own = pairs.anchor[block]
        scores[rows[own >= 0], own[own >= 0]] = -np.inf  # the anchor item is not a candidate
        positive_scores = scores[rows, pairs.positive[block]]
        ranks[block] = (scores > positive_scores[:, None]).sum(axis=1)  # 0 = ranked first
    metrics = _per_anchor(ranks, anchor_row, k)
    for s, name in enumerate(SOURCES):
        mask = pairs.source == s
        if mask.any():
            _, rows = np.unique(anchor_row[mask], return_inverse=True)
            for metric, value in _per_anchor(ranks[mask], rows, k).items():
                metrics[f"{name}/{metric}"] = value
    return metrics


def _per_anchor(ranks: np.ndarray, anchor_row: np.ndarray, k: int) -> dict[str, float]:
    """Mean over anchors of recall@k (share of its positives in the top k) and MRR (1 / best rank)."""
    n = int(anchor_row.max()) + 1 if len(anchor_row) else 0
    if n == 0:
        return {f"recall@{k}": 0.0, "mrr": 0.0, "anchors": 0}
    count = np.bincount(anchor_row, minlength=n)
    hits = np.bincount(anchor_row, weights=(ranks < k).astype(np.float64), minlength=n)
    best = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(best, anchor_row, ranks)
    return {f"recall@{k}": float(np.mean(hits / count)), "mrr": float(np.mean(1.0 / (best + 1))), "anchors": n}
