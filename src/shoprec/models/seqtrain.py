"""Training for the sequential recommenders: examples, length-bucketed batches, the softmax loss,
validation on each user's last training item, and early stopping.

The model learns to predict every next item of a user's history (one target per position, as in
SASRec), with a softmax over the whole catalogue (``loss="softmax"``) or over the target plus
``negatives`` shared random items (``loss="sampled"``). Cross-entropy over many items rather than
one random negative with binary cross-entropy is what lifts SASRec's accuracy most (Klenitskiy &
Vasilev 2023; Petrov & Macdonald 2023).

Early stopping: each user's last training item is held out (for up to ``valid_users`` users) and
the model, fed the items before it, ranks the whole catalogue minus those items. Training stops
when NDCG@10 on that set has not improved for ``patience`` epochs; the best epoch's weights are
kept. The held-out items are inputs, not targets: the final user state reads the whole history.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from shoprec.data.dataset import Dataset
from shoprec.ranks import ndcg_of_ranks, target_ranks


def user_histories(dataset: Dataset, collapse_repeats: bool = True) -> list[np.ndarray]:
    """Each user's items, oldest first, as shifted indices (item ``i`` -> ``i + 1``), int64.

    With ``collapse_repeats`` an item repeated back to back (a view, then the cart, then the
    purchase of one product) counts once: the next *different* item is what is worth predicting.
    """
    seqs = dataset.sequences()
    items = seqs.items.astype(np.int64) + 1
    indptr = seqs.indptr
    if collapse_repeats and len(items):
        lengths = np.diff(indptr)
        owner = np.repeat(np.arange(dataset.n_users), lengths)  # (n_events,) user of each event
        keep = np.ones(len(items), dtype=bool)
        keep[1:] = (items[1:] != items[:-1]) | (owner[1:] != owner[:-1])
        indptr = np.concatenate([[0], np.cumsum(np.bincount(owner[keep], minlength=dataset.n_users))])
        items = items[keep]
    return [items[indptr[u] : indptr[u + 1]] for u in range(dataset.n_users)]


@dataclass
class Examples:
    """Training windows: ``inputs[j]`` predicts ``targets[j]`` position by position."""

    inputs: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)

    def add(self, sequence: np.ndarray, max_len: int) -> None:
        """Windows of ``max_len`` steps covering the whole sequence, newest window first."""
        end = len(sequence)
        while end >= 2:
            start = max(0, end - max_len - 1)
            window = sequence[start:end]
            self.inputs.append(window[:-1])
            self.targets.append(window[1:])
            end = start + 1 if start > 0 else 0

    def __len__(self) -> int:
        return len(self.inputs)

    def n_targets(self) -> int:
        return int(sum(len(t) for t in self.targets))


def left_pad(rows: list[np.ndarray], length: int | None = None) -> torch.Tensor:
    """Rows right-aligned in a zero matrix: (len(rows), length), the newest item last."""
    length = length or max((len(r) for r in rows), default=1) or 1
    out = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        row = row[-length:]
        if len(row):
            out[i, length - len(row) :] = row
    return torch.from_numpy(out)


def batches(examples: Examples, batch_size: int, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
    """Shuffled batches of examples of similar length (little padding), each (B, T) inputs/targets."""
    lengths = np.array([len(x) for x in examples.inputs])
    order = np.lexsort((rng.random(len(lengths)), lengths))  # by length, random within a length
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for c in rng.permutation(len(chunks)):
        rows = chunks[c]
        yield (
            left_pad([examples.inputs[j] for j in rows]),
            left_pad([examples.targets[j] for j in rows]),
        )


def softmax_loss(
    hidden: torch.Tensor, targets: torch.Tensor, table: torch.Tensor, negatives: int, rng: torch.Generator
) -> torch.Tensor:
    """Cross-entropy of each real position's target; over the full catalogue when ``negatives`` is
    0 or covers the catalogue anyway, else against ``negatives`` shared uniform random items.

    ``hidden`` (B, T, D), ``targets`` (B, T) shifted indices with 0 = no target, ``table``
    (n_items + 1, D) with row 0 = padding.
    """
    real = targets > 0
    h = hidden[real]  # (N, D)
    t = targets[real]  # (N,)
    n_items = table.shape[0] - 1
    if negatives <= 0 or negatives >= n_items:
        logits = h @ table[1:].T  # (N, n_items)
        return F.cross_entropy(logits, t - 1)
    sampled = torch.randint(1, n_items + 1, (negatives,), generator=rng)  # shared negatives
    positive = (h * table[t]).sum(-1, keepdim=True)  # (N, 1)
    negative = h @ table[sampled].T  # (N, negatives)
    negative = negative.masked_fill(sampled.unsqueeze(0) == t.unsqueeze(1), float("-inf"))  # accidental hits
    logits = torch.cat([positive, negative], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(t), dtype=torch.long))


@dataclass
class Validation:
    """Held-out last items: ``inputs`` (the model's window of the history before it), ``seen``
    (that whole history, excluded from the ranking) and ``targets``, all shifted indices."""

    inputs: list[np.ndarray]
    seen: list[np.ndarray]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def ndcg_at_10(scores: torch.Tensor, seen: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Per row NDCG@10 of ``targets`` (shifted) in ``scores`` (B, n_items); ``seen`` (B, S) shifted
    items to exclude, 0 = padding. Ties are ranked as :func:`shoprec.ranks.top_k` lists them."""
    scores = scores.clone()
    rows = torch.arange(len(scores)).unsqueeze(1).expand_as(seen)
    real = seen > 0
    scores[rows[real], seen[real] - 1] = float("-inf")
    return ndcg_of_ranks(target_ranks(scores.numpy(), (targets - 1).numpy()), 10)


@dataclass
class TrainLog:
    """What training did, epoch by epoch; kept with the model."""

    epochs: int = 0
    best_epoch: int = 0
    best_ndcg: float = float("nan")
    seconds: float = 0.0
    stopped: str = ""
    loss: list[float] = field(default_factory=list)
    valid_ndcg: list[float] = field(default_factory=list)


class EarlyStopping:
    """Keeps the best validation NDCG@10 and its weights; says when patience has run out."""

    def __init__(self, log: TrainLog, patience: int) -> None:
        self.log, self.patience = log, patience
        self.waited = 0
        self.best_state: dict | None = None

    def update(self, net: torch.nn.Module, ndcg: float, epoch: int) -> bool:
        """Record epoch ``epoch`` (0-based); True when training should stop."""
        log = self.log
        log.valid_ndcg.append(ndcg)
        if math.isnan(log.best_ndcg) or ndcg > log.best_ndcg:
            log.best_ndcg, log.best_epoch, self.waited = ndcg, epoch + 1, 0
            self.best_state = copy.deepcopy(net.state_dict())
        else:
            self.waited += 1
        if self.waited >= self.patience:
            log.stopped = f"no gain in validation NDCG@10 for {self.patience} epochs"
            return True
        return False

    def restore(self, net: torch.nn.Module) -> None:
        """Load the best epoch's weights (no-op when nothing was validated)."""
        if self.best_state is not None:
            net.load_state_dict(self.best_state)


def train(
    net: torch.nn.Module,
    examples: Examples,
    validation: Validation | None,
    settings,  # SequentialConfig: epochs, patience, batch_size, learning_rate, weight_decay, negatives, seed
    progress: bool,
) -> TrainLog:
    """Adam on the softmax loss; early stopping on validation NDCG@10 (best weights restored)."""
    rng = np.random.default_rng(settings.seed)
    sampler = torch.Generator().manual_seed(settings.seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    log = TrainLog()
    stopping = EarlyStopping(log, settings.patience)
    started = time.perf_counter()
    bar = tqdm(range(settings.epochs), desc=f"training {type(net).__name__}", unit="epoch", disable=not progress)
    for epoch in bar:
        net.train()
        total, steps = 0.0, 0
        for inputs, targets in batches(examples, settings.batch_size, rng):
            table = net.items.all()
            loss = softmax_loss(net(inputs, table), targets, table, settings.negatives, sampler)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total, steps = total + loss.item(), steps + 1
        log.epochs = epoch + 1
        log.loss.append(total / max(steps, 1))
        if validation is None or not len(validation):
            bar.set_postfix(loss=f"{log.loss[-1]:.3f}")
            continue
        ndcg = evaluate(net, validation, settings.batch_size * 4)
        stop = stopping.update(net, ndcg, epoch)
        bar.set_postfix(loss=f"{log.loss[-1]:.3f}", ndcg10=f"{ndcg:.4f}", best=f"{log.best_ndcg:.4f}@{log.best_epoch}")
        if stop:
            break
    else:
        log.stopped = f"reached epochs={settings.epochs}"
    stopping.restore(net)
    net.eval()
    log.seconds = time.perf_counter() - started
    return log


@torch.no_grad()
def evaluate(net: torch.nn.Module, validation: Validation, batch_size: int) -> float:
    """Mean NDCG@10 of the held-out items over the whole catalogue (seen items excluded)."""
    net.eval()
    table = net.items.all()
    scores = []
    for start in range(0, len(validation), batch_size):
        inputs = left_pad(validation.inputs[start : start + batch_size])
        seen = left_pad(validation.seen[start : start + batch_size])
        targets = torch.from_numpy(validation.targets[start : start + batch_size])
        last = net(inputs, table)[:, -1]  # (B, D)
        scores.append(ndcg_at_10(last @ table[1:].T, seen, targets))
    return float(np.concatenate(scores).mean())
