"""Fine-tuning dense search on query -> relevant product pairs: judgments, term splits, the query tower.

Training data is a set of :class:`Judgments`, (query, product position, graded relevance), from a
judgments CSV (``query,item_id,relevance``) or from a shop's search log (the dataset's ``queries``
table: a clicked item is relevance 1). :func:`split_terms` splits the *distinct query texts*
(seeded), so a query held out for evaluation is never trained on, in any form of its judgments.

**Query tower only.** The item vectors stay those the language-model layer already computed (the
catalogue is not encoded again, which takes minutes for 50,000 titles on two cores); only the
encoder that turns queries into vectors is fine-tuned, from the packaged MiniLM. The loss is a
softmax over the whole catalogue: for each (query, relevant product) pair, cross-entropy of
``scale * cosine(query, item)`` over every item vector, the query's other relevant products left
out of the negatives. Every catalogue item is a negative at each step (no in-batch sampling), so a
batch of 32 is enough, and what is optimised is what retrieval measures. Only the top
``train_layers`` transformer layers learn (the embeddings and lower layers stay as shipped): on a
two-core machine a step then costs about half as much, and the short training runs cannot wander far
from the pretrained model. The loop reuses :mod:`shoprec.text.finetune`'s pieces (batches without a
repeated query or product, warm-up then linear decay, clipping).

>>> train, valid, test = split_terms(judgments, seed=0)                          # doctest: +SKIP
>>> result = finetune_queries("minilm", item_vectors, train, valid, "models/q")   # doctest: +SKIP
>>> result.before["recall@10"], result.after["recall@10"]                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.errors import ShoprecError
from shoprec.search.products import ProductTable
from shoprec.text.finetune import FinetuneSettings, distinct_batches, load_trainable, resolve_base, torch_threads

RESULT_FILE = "query_tower.json"
EVAL_BLOCK = 256  # queries scored against the catalogue at a time


def normalise_query(text: str) -> str:
    """Lower case, single spaces: the form queries are grouped, split and trained by."""
    return " ".join(str(text).lower().split())


@dataclass(frozen=True)
class Judgments:
    """Graded (query, item) pairs. ``item`` is a product table position; higher relevance is better."""

    query: np.ndarray  # (n,) object: normalised query text
    item: np.ndarray  # (n,) int64 table position
    relevance: np.ndarray  # (n,) float64
    dropped: dict[str, int] = field(default_factory=dict)  # rows not kept, by reason

    def __post_init__(self) -> None:
        if not len(self.query) == len(self.item) == len(self.relevance):
            raise ValueError("judgments: query, item and relevance must have one entry per pair")

    def __len__(self) -> int:
        return len(self.item)

    def select(self, mask: np.ndarray) -> Judgments:
        return Judgments(self.query[mask], self.item[mask], self.relevance[mask], self.dropped)

    def terms(self) -> list[str]:
        """Distinct query texts, sorted."""
        return sorted(set(self.query.tolist()))

    def for_terms(self, terms: set[str] | list[str]) -> Judgments:
        return self.select(np.isin(self.query.astype(str), np.asarray(list(terms), dtype=str)))

    def relevant(self, min_relevance: float) -> dict[str, np.ndarray]:
        """Query -> positions judged at least ``min_relevance`` (queries without one are absent)."""
        keep = self.relevance >= min_relevance
        frame = pd.DataFrame({"query": self.query[keep], "item": self.item[keep]})
        return {q: np.unique(g.to_numpy(dtype=np.int64)) for q, g in frame.groupby("query", sort=True)["item"]}


def judgments_from_frame(frame: pd.DataFrame, table: ProductTable, source: str = "judgments") -> Judgments:
    """Judgments from columns ``query``, ``item_id`` and optional ``relevance`` (default 1: a click).

    Rows with an empty query or an item the table does not hold are dropped and counted in
    ``dropped``; repeated (query, item) pairs are averaged. A relevance that is not a number is an error.
    """
    missing = [c for c in ("query", "item_id") if c not in frame.columns]
    if missing:
        raise ShoprecError(
            f"{source}: missing column(s) {', '.join(missing)}. Give query, item_id and (optionally) relevance"
        )
    relevance = (
        pd.to_numeric(frame["relevance"], errors="coerce")
        if "relevance" in frame
        else pd.Series(1.0, index=frame.index)
    )
    bad = relevance.isna() & (frame["relevance"].notna() if "relevance" in frame else False)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise ShoprecError(
            f"{source}: row {row}: relevance {frame['relevance'].iloc[row - 1]!r} is not a number. "
            "Give graded relevance as numbers (higher = more relevant)"
        )
    query = frame["query"].fillna("").astype(str).map(normalise_query)
    item = frame["item_id"].map(lambda v: table.position(str(v)) if pd.notna(v) else -1)
    empty, unknown = (query == "").to_numpy(), (item < 0).to_numpy()
    dropped = {"empty query": int(empty.sum()), "item not in catalogue": int((unknown & ~empty).sum())}
    dropped["no relevance"] = int((relevance.isna() & ~empty & ~unknown).sum())
    keep = ~empty & ~unknown & relevance.notna().to_numpy()
    pairs = pd.DataFrame({"query": query[keep], "item": item[keep], "relevance": relevance[keep]})
    pairs = pairs.groupby(["query", "item"], sort=True)["relevance"].mean().reset_index()
    dropped["merged"] = int(keep.sum()) - len(pairs)  # repeats of a (query, item) pair, averaged into one
    return Judgments(
        pairs["query"].to_numpy(dtype=object),
        pairs["item"].to_numpy(dtype=np.int64),
        pairs["relevance"].to_numpy(dtype=np.float64),
        dropped,
    )


def read_judgments(path: str | Path, table: ProductTable) -> Judgments:
    """A judgments CSV (``query,item_id,relevance``) over the products of ``table``."""
    path = Path(path)
    if not path.is_file():
        raise ShoprecError(f"judgments file {path}: not found. Give a CSV with columns query,item_id,relevance")
    try:
        frame = pd.read_csv(path, dtype={"item_id": str, "query": str})
    except (ValueError, UnicodeDecodeError) as err:
        raise ShoprecError(f"judgments file {path}: cannot be read as CSV ({err}). Save it as UTF-8 CSV") from None
    return judgments_from_frame(frame, table, source=str(path))


def split_terms(
    judgments: Judgments, shares: tuple[float, ...] = (0.6, 0.2, 0.2), seed: int = 0
) -> tuple[Judgments, ...]:
    """Split by distinct query text (seeded): one :class:`Judgments` per share, no query in two parts."""
    if any(s < 0 for s in shares) or not np.isclose(sum(shares), 1.0):
        raise ShoprecError(f"term split shares must be non-negative and add up to 1, got {shares}")
    terms = np.asarray(judgments.terms(), dtype=object)
    order = terms[np.random.default_rng(seed).permutation(len(terms))]
    cuts = np.round(np.cumsum(shares)[:-1] * len(terms)).astype(int)
    return tuple(judgments.for_terms(set(part.tolist())) for part in np.split(order, cuts))


@dataclass(frozen=True)
class QueryTowerSettings:
    """Everything that shapes a query-tower run (written to ``query_tower.json``)."""

    epochs: int = 1  # passes over the training pairs
    batch_size: int = 32  # queries per step; the whole catalogue is the negatives
    learning_rate: float = 1e-4  # AdamW peak learning rate (only the top layers learn)
    warmup: float = 0.1  # share of the steps spent warming the learning rate up
    scale: float = 20.0  # cosine -> logit multiplier (inverse temperature)
    train_layers: int = 2  # top transformer layers that learn; 0 = every layer and the embeddings
    min_relevance: float = 1.0  # a (query, item) pair with at least this relevance is a positive
    max_pairs: int = 50_000  # positives used at most (strongest first, then at random)
    max_length: int = 32  # tokens per query
    seed: int = 0
    threads: int = 2


@dataclass
class QueryTowerResult:
    out_dir: Path
    base: str
    settings: QueryTowerSettings
    pairs: dict[str, int]
    before: dict[str, float]
    after: dict[str, float]
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**asdict(self), "out_dir": str(self.out_dir)}


def finetune_queries(
    base: str,
    item_vectors: np.ndarray,
    train: Judgments,
    held_out: Judgments,
    out_dir: str | Path,
    settings: QueryTowerSettings | None = None,
    progress: bool = True,
) -> QueryTowerResult:
    """Fine-tune the query encoder against fixed ``item_vectors`` (rows = table positions); writes a
    sentence-transformers folder to ``out_dir`` plus ``query_tower.json``. ``held_out`` is scored over
    the whole catalogue before and after (Recall@10/@100 and MRR of its relevant items)."""
    settings = settings or QueryTowerSettings()
    if settings.batch_size < 1 or settings.epochs < 1 or not settings.learning_rate > 0:
        raise ShoprecError(f"query tower: batch_size and epochs must be >= 1 and learning_rate > 0, got {settings}")
    folder = resolve_base(base)
    out_dir = Path(out_dir)
    queries, positives = training_pairs(train, settings)
    if len(queries) == 0:
        raise ShoprecError(
            f"query tower: no training pair has relevance >= {settings.min_relevance} "
            f"({len(train)} judgments given). Lower min_relevance or give more judgments"
        )
    held = held_out.relevant(settings.min_relevance)
    clock = [time.perf_counter()]
    with torch_threads(settings.threads):
        model = load_trainable(folder, FinetuneSettings(max_length=settings.max_length, seed=settings.seed))
        before = evaluate_queries(model, item_vectors, held)
        clock.append(time.perf_counter())
        others = train.relevant(settings.min_relevance)
        losses, steps = train_queries(model, item_vectors, queries, positives, others, settings, progress)
        clock.append(time.perf_counter())
        after = evaluate_queries(model, item_vectors, held)
        clock.append(time.perf_counter())
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save(str(out_dir), create_model_card=False)
    seconds = {s: clock[i + 1] - clock[i] for i, s in enumerate(("before", "training", "after"))}
    counts = {"train_pairs": len(queries), "train_queries": len(set(queries)), "held_out_queries": len(held)}
    result = QueryTowerResult(out_dir, base, settings, counts, before, after, losses, steps, seconds)
    (out_dir / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    return result


def training_pairs(train: Judgments, settings: QueryTowerSettings) -> tuple[list[str], np.ndarray]:
    """(query, positive item) pairs at or above ``min_relevance``, most relevant first, capped at
    ``max_pairs`` (ties in random seeded order)."""
    keep = np.flatnonzero(train.relevance >= settings.min_relevance)
    rng = np.random.default_rng(settings.seed)
    keep = keep[np.lexsort((rng.random(len(keep)), -train.relevance[keep]))][: settings.max_pairs]
    return train.query[keep].tolist(), train.item[keep].astype(np.int64)


def _freeze(model, train_layers: int) -> None:  # noqa: ANN001 - a SentenceTransformer
    """Leave only the top ``train_layers`` transformer layers (and the pooling) trainable."""
    if train_layers <= 0:
        return
    bert = model[0].auto_model
    layers = bert.encoder.layer
    for module in [bert.embeddings, *layers[: max(0, len(layers) - train_layers)]]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)


def train_queries(
    model,  # noqa: ANN001 - a SentenceTransformer
    item_vectors: np.ndarray,
    queries: list[str],
    positives: np.ndarray,
    others: dict[str, np.ndarray],
    settings: QueryTowerSettings,
    progress: bool = True,
) -> tuple[list[float], int]:
    """Catalogue-softmax training of the query encoder in place; (mean loss per epoch, steps)."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    _freeze(model, settings.train_layers)
    items = torch.from_numpy(np.ascontiguousarray(item_vectors, dtype=np.float32))  # (n_items, dim)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.01)
    epochs = [
        list(distinct_batches(rng.permutation(len(queries)), queries, positives.tolist(), settings.batch_size))
        for _ in range(settings.epochs)
    ]
    total = sum(len(b) for b in epochs)
    warmup = max(1, int(settings.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    model.train()
    losses, steps = [], 0
    bar = tqdm(total=total, desc="query tower", unit="step", disable=not progress)
    for batches in epochs:
        epoch_losses = []
        for batch in batches:
            texts = [queries[i] for i in batch]
            vectors = model(model.preprocess(texts))["sentence_embedding"]  # (B, dim)
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
            logits = settings.scale * vectors @ items.T  # (B, n_items)
            target = torch.as_tensor(positives[batch])
            mask = torch.zeros_like(logits, dtype=torch.bool)
            for row, (text, own) in enumerate(zip(texts, target.tolist(), strict=True)):
                other = others.get(text)
                if other is not None:
                    mask[row, torch.as_tensor(other[other != own])] = True  # other relevant items: not negatives
            loss = torch.nn.functional.cross_entropy(logits.masked_fill(mask, float("-inf")), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
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


def encode_queries(model, texts: list[str], batch_size: int = 128) -> np.ndarray:  # noqa: ANN001
    """Unit vectors (n, dim) of query texts with a SentenceTransformer (or a shoprec Encoder)."""
    if hasattr(model, "_encode_batch"):
        return model.encode(texts, batch_size=batch_size, progress=False)
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)


def evaluate_queries(model, item_vectors: np.ndarray, relevant: dict[str, np.ndarray]) -> dict[str, float]:  # noqa: ANN001
    """Full-catalogue Recall@10, Recall@100 and MRR of each query's relevant items (mean over queries)."""
    texts = list(relevant)
    if not texts:
        return {"recall@10": 0.0, "recall@100": 0.0, "mrr": 0.0, "queries": 0}
    vectors = encode_queries(model, texts)
    return retrieval_metrics(top_items(vectors, item_vectors, 100), [relevant[t] for t in texts])


def top_items(query_vectors: np.ndarray, item_vectors: np.ndarray, k: int) -> np.ndarray:
    """(n_queries, k) item positions by cosine, best first (exact, in blocks; ties by position)."""
    out = np.zeros((len(query_vectors), min(k, len(item_vectors))), dtype=np.int64)
    for start in range(0, len(query_vectors), EVAL_BLOCK):
        scores = query_vectors[start : start + EVAL_BLOCK] @ item_vectors.T  # (B, n_items)
        part = np.argpartition(-scores, out.shape[1] - 1, axis=1)[:, : out.shape[1]]
        rows = np.arange(len(part))[:, None]
        order = np.lexsort((part, -scores[rows, part]), axis=1)
        out[start : start + len(part)] = part[rows, order]
    return out


def retrieval_metrics(ranked: np.ndarray | list, relevant: list[np.ndarray], ks=(10, 100)) -> dict[str, float]:  # noqa: ANN001
    """Mean over queries of Recall@k (share of the query's relevant items in its first k) and MRR."""
    recalls = {k: [] for k in ks}
    mrr = []
    for row, truth in zip(ranked, relevant, strict=True):
        hit = np.isin(np.asarray(row), truth)
        for k in ks:
            recalls[k].append(hit[:k].sum() / len(truth))
        first = np.flatnonzero(hit)
        mrr.append(1.0 / (first[0] + 1) if len(first) else 0.0)
    out = {f"recall@{k}": float(np.mean(v)) for k, v in recalls.items()}
    return {**out, "mrr": float(np.mean(mrr)), "queries": len(mrr)}


def with_settings(settings: QueryTowerSettings, **changes: object) -> QueryTowerSettings:
    """``settings`` with the given fields changed (None values ignored)."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
