"""Cross-encoder reranking: (query, product text) read together by a small transformer, one score each.

No cross-encoder ships offline here, so one is trained from the packaged all-MiniLM-L6-v2 weights:
its first ``layers`` transformer layers (2 by default: on one core of the project's machine six
layers take several times the issue's 25 ms budget for 20 pairs) under a fresh one-output head. Training
pairs are a query's judged products, labelled by relevance scaled to [0, 1] (or 1 at or above
``positive_at`` and 0 below it: on Home Depot's judgments the 0/1 labels learned faster), and ``negatives``
products retrieval proposed for it that nobody judged, labelled 0 (so the model also learns what
retrieval gets wrong, not only the order among judged products). Loss: binary cross-entropy on the
logit. The word embeddings stay as shipped (the AdamW step over 30,000 x 384 of them cost more than
the two layers). The result is a Hugging Face model folder (``config.json``, safetensors, tokenizer)
plus ``crossencoder.json`` with the settings and held-out metrics before and after training.

:class:`CrossEncoderStage` is a search stage (:class:`shoprec.search.hybrid.Stage`): it re-scores the
current best ``top`` hits of a query.

>>> stage = CrossEncoderStage("models/search/crossencoder", top=20)          # doctest: +SKIP
>>> engine = SearchEngine(table, dense=dense, stages=[stage])                # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from shoprec.errors import ShoprecError
from shoprec.search.dense import product_text
from shoprec.search.finetune import Judgments
from shoprec.search.query import ParsedQuery
from shoprec.text.finetune import resolve_base, torch_threads

RESULT_FILE = "crossencoder.json"


@dataclass(frozen=True)
class CrossEncoderSettings:
    """Everything that shapes a cross-encoder run (written to ``crossencoder.json``)."""

    layers: int = 2  # first transformer layers of MiniLM kept (of 6)
    max_length: int = 48  # tokens per (query, product text) pair
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-5  # AdamW peak; the head starts from random
    warmup: float = 0.1
    negatives: int = 2  # unjudged retrieved products per query, labelled 0
    max_judged: int = 4  # judged products per query at most (most and least relevant first)
    max_pairs: int = 20_000  # training pairs at most (queries drawn at random until full)
    positive_at: float | None = None  # judged relevance at or above it is label 1, below 0 (None: scaled to [0, 1])
    seed: int = 0
    threads: int = 2


@dataclass
class CrossEncoderResult:
    out_dir: Path
    base: str
    settings: CrossEncoderSettings
    pairs: dict[str, int]
    before: dict[str, float]
    after: dict[str, float]
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**asdict(self), "out_dir": str(self.out_dir)}


class CrossEncoder:
    """A trained cross-encoder folder: ``score(query, texts)`` gives one logit per text (higher = better)."""

    def __init__(
        self, folder: str | Path, threads: int | None = None, max_length: int | None = None, quantize: bool = False
    ) -> None:
        """``quantize``: int8 weights for the linear layers (torch dynamic quantization), for CPU serving;
        scores then differ slightly from the trained model's."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ShoprecError(
                f"{folder}: not a cross-encoder folder (no config.json). Give a folder written by "
                "'shoprec search-train' (its crossencoder/ part)"
            )
        settings = _read_json(folder / RESULT_FILE).get("settings", {})
        self.folder = folder
        self.threads = threads
        self.max_length = int(max_length or settings.get("max_length", 48))
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True)
        self.model.eval()
        if quantize:
            import torch

            self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(len(texts),) float32 logits of ``query`` against each text."""
        return self.score_pairs([query] * len(texts), texts)

    def score_pairs(
        self, queries: Sequence[str], texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """(n,) float32 logits of each (query, text) pair, in batches of similar length."""
        import torch
        from tqdm.auto import tqdm

        out = np.zeros(len(texts), dtype=np.float32)
        order = np.argsort([len(q) + len(t) for q, t in zip(queries, texts, strict=True)], kind="stable")
        starts = range(0, len(order), batch_size)
        with torch.inference_mode(), _threads(self.threads):
            for start in tqdm(starts, desc="cross-encoder", unit="batch", disable=not progress):
                rows = order[start : start + batch_size]
                batch = self._tokens([queries[i] for i in rows], [texts[i] for i in rows])
                out[rows] = self.model(**batch).logits[:, 0].float().numpy()
        return out

    def _tokens(self, queries: list[str], texts: list[str]) -> dict:
        return self.tokenizer(
            queries, texts, truncation="longest_first", max_length=self.max_length, padding=True, return_tensors="pt"
        )


class CrossEncoderStage:
    """Search stage: the cross-encoder's logit for each of the current best ``top`` hits."""

    def __init__(
        self,
        model_dir: str | Path,
        top: int = 20,
        threads: int | None = 1,
        name: str = "crossencoder",
        quantize: bool = False,
    ) -> None:
        if top < 1:
            raise ShoprecError(f"cross-encoder stage: top must be at least 1, got {top}")
        self.model = CrossEncoder(model_dir, threads=threads, quantize=quantize)
        self.top = int(top)
        self.name = name

    def score(self, query: ParsedQuery, hits: list) -> np.ndarray:
        if not hits:
            return np.zeros(0, dtype=np.float32)
        text = query.semantic_text.strip() or query.text
        return self.model.score(text, [product_text(hit.product) for hit in hits])


def _threads(threads: int | None):  # noqa: ANN202
    from contextlib import nullcontext

    return torch_threads(threads) if threads else nullcontext()


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def training_pairs(
    judgments: Judgments, candidates: dict[str, np.ndarray], settings: CrossEncoderSettings
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(queries, items, labels in [0, 1]) for training or checking, per query: up to ``max_judged``
    judged items (alternately the most and least relevant) and ``negatives`` unjudged candidates."""
    rng = np.random.default_rng(settings.seed)
    low, high = float(judgments.relevance.min(initial=0.0)), float(judgments.relevance.max(initial=1.0))
    span = high - low
    queries: list[str] = []
    items: list[int] = []
    labels: list[float] = []
    by_query: dict[str, list[int]] = {}
    for i, text in enumerate(judgments.query.tolist()):
        by_query.setdefault(text, []).append(i)
    for text in [list(by_query)[i] for i in rng.permutation(len(by_query))]:
        if len(items) >= settings.max_pairs:
            break
        rows = sorted(by_query[text], key=lambda i: -judgments.relevance[i])
        picked = [rows[j // 2] if j % 2 == 0 else rows[-1 - j // 2] for j in range(min(len(rows), settings.max_judged))]
        judged = set(judgments.item[rows].tolist())
        for i in dict.fromkeys(picked):
            queries.append(text)
            items.append(int(judgments.item[i]))
            labels.append(_label(judgments.relevance[i], low, span, settings.positive_at))
        pool = [c for c in candidates.get(text, np.zeros(0, np.int64)).tolist() if c not in judged]
        for c in rng.permutation(pool)[: settings.negatives].tolist() if pool else []:
            queries.append(text)
            items.append(int(c))
            labels.append(0.0)
    return queries, np.asarray(items, dtype=np.int64), np.asarray(labels, dtype=np.float32)


def _label(relevance: float, low: float, span: float, positive_at: float | None) -> float:
    if positive_at is not None:
        return float(relevance >= positive_at)
    return (relevance - low) / span if span > 0 else 1.0


def train_cross_encoder(
    base: str,
    texts: Sequence[str],
    train: Judgments,
    candidates: dict[str, np.ndarray],
    out_dir: str | Path,
    held_out: Judgments | None = None,
    settings: CrossEncoderSettings | None = None,
    progress: bool = True,
) -> CrossEncoderResult:
    """Train a cross-encoder from ``base`` ("minilm" or a MiniLM-style folder) on judged pairs plus
    unjudged ``candidates`` (query -> retrieved positions) as negatives; ``texts`` are the product
    texts by position. Writes ``out_dir``; scores ``held_out`` before and after (see :func:`check`)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    settings = settings or CrossEncoderSettings()
    if settings.layers < 1 or settings.batch_size < 1 or settings.epochs < 1:
        raise ShoprecError(f"cross-encoder: layers, batch_size and epochs must be at least 1, got {settings}")
    folder = resolve_base(base)
    queries, items, labels = training_pairs(train, candidates, settings)
    if len(queries) == 0:
        raise ShoprecError("cross-encoder: no training pairs (no judgments given). Give judgments or a search log")
    held = training_pairs(held_out, candidates, settings) if held_out is not None and len(held_out) else None
    clock = [time.perf_counter()]
    with torch_threads(settings.threads):
        torch.manual_seed(settings.seed)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(folder), num_labels=1, num_hidden_layers=settings.layers, local_files_only=True
        )
        scorer = _Scorer(tokenizer, model, settings.max_length)
        before = check(scorer, texts, *held) if held else {}
        clock.append(time.perf_counter())
        losses, steps = _train(scorer, [texts[i] for i in items.tolist()], queries, labels, settings, progress)
        clock.append(time.perf_counter())
        after = check(scorer, texts, *held) if held else {}
        clock.append(time.perf_counter())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    seconds = {s: clock[i + 1] - clock[i] for i, s in enumerate(("before", "training", "after"))}
    counts = {"train_pairs": len(queries), "train_negatives": int((labels == 0).sum())}  # label 0, judged or not
    counts["held_out_pairs"] = len(held[0]) if held else 0
    result = CrossEncoderResult(out_dir, base, settings, counts, before, after, losses, steps, seconds)
    (out_dir / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    return result


class _Scorer(CrossEncoder):
    """A cross-encoder still in training (no folder yet)."""

    def __init__(self, tokenizer, model, max_length: int) -> None:  # noqa: ANN001
        self.tokenizer, self.model, self.max_length, self.threads = tokenizer, model, max_length, None


def _train(
    scorer: _Scorer,
    texts: list[str],
    queries: list[str],
    labels: np.ndarray,
    settings: CrossEncoderSettings,
    progress: bool,
) -> tuple[list[float], int]:
    import torch
    from tqdm.auto import tqdm

    model = scorer.model
    model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.01)
    rng = np.random.default_rng(settings.seed)
    size = settings.batch_size
    total = settings.epochs * ((len(texts) + size - 1) // size)
    warmup = max(1, int(settings.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    losses, steps = [], 0
    bar = tqdm(total=total, desc="cross-encoder", unit="step", disable=not progress)
    for _ in range(settings.epochs):
        epoch = []
        order = rng.permutation(len(texts))
        for start in range(0, len(texts), size):
            rows = order[start : start + size].tolist()
            batch = scorer._tokens([queries[i] for i in rows], [texts[i] for i in rows])
            loss = loss_fn(model(**batch).logits[:, 0], torch.as_tensor(labels[rows]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            epoch.append(float(loss.detach()))
            steps += 1
            bar.update()
            bar.set_postfix(loss=f"{np.mean(epoch[-50:]):.3f}")
        losses.append(float(np.mean(epoch)) if epoch else 0.0)
    bar.close()
    model.eval()
    return losses, steps


def check(
    scorer: CrossEncoder, texts: Sequence[str], queries: list[str], items: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """Held-out quality of a scorer: mean over queries of NDCG@10 of its pairs ordered by score
    (gain = label), and the share of (more relevant, less relevant) pairs of a query it orders right."""
    scores = scorer.score_pairs(queries, [texts[i] for i in items.tolist()])
    by_query: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        by_query.setdefault(q, []).append(i)
    ndcgs, right, pairs = [], 0, 0
    for rows in by_query.values():
        gain, score = labels[rows], scores[rows]
        order = np.argsort(-score, kind="stable")[:10]
        ideal = np.sort(gain)[::-1][:10]
        discount = 1.0 / np.log2(np.arange(2, 12))
        best = float((ideal * discount[: len(ideal)]).sum())
        if best > 0:
            ndcgs.append(float((gain[order] * discount[: len(order)]).sum()) / best)
        diff_gain = gain[:, None] - gain[None, :]
        diff_score = score[:, None] - score[None, :]
        pairs += int((diff_gain > 0).sum())
        right += int(((diff_gain > 0) & (diff_score > 0)).sum())
    return {"ndcg@10": float(np.mean(ndcgs)) if ndcgs else 0.0, "pair_accuracy": right / pairs if pairs else 0.0}
