"""Training the cross-category attention model: examples from purchase histories and a small torch net.

An example is ``history -> target``: the target is an item bought in a category the shopper had
never bought before, the history the distinct items bought before it (oldest first, the newest
``max_history`` kept, right-aligned so the last column is the most recent). Items of one basket
share a timestamp and keep the data's order, so the first item of a basket is history for the
others: exactly the "goes with" signal a cross-category model needs.

The net (see :class:`AttentionNet`) scores a candidate ``i`` against the history ``h``::

    e_j = E[j] + P t_j                                    # id embedding + projected text vector
    alpha_{h,i} = softmax_h((W_q e_i) . (W_k e_h) / sqrt(d) + r_pos(h))
    score_i = sum_h alpha_{h,i} (e_h . e_i) + b_i

It learns with a sampled softmax: the target against ``n_negatives`` items drawn uniformly from
the items with a known category (uniform, so no log-q correction is needed; the item bias learns
popularity). Negatives in a category the history holds are masked out, as they can never be
recommended. A ``valid_share`` of the examples (at most :data:`MAX_VALID`) is held out; training
stops when their softmax loss against up to :data:`MAX_VALID_CANDIDATES` eligible items has not
improved for ``patience`` epochs, and the best epoch's weights are kept.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from shoprec.data.dataset import Dataset

MAX_VALID = 1000
"""Most examples held out for early stopping (more only slow each epoch down)."""
MAX_VALID_CANDIDATES = 2048
"""Items the held-out targets compete with: all eligible items in catalogues up to this size, else a
fixed uniform sample (drawn once, so the loss of every epoch is measured on the same task)."""


@dataclass
class Histories:
    """Per user, the distinct items of some event types, in order of first occurrence (CSR-like)."""

    indptr: np.ndarray  # (n_users + 1,) int64
    items: np.ndarray  # (total,) int64

    def of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)


def event_histories(dataset: Dataset, events: tuple[str, ...]) -> Histories:
    """Each user's distinct items with one of ``events``, oldest first (by their first such event)."""
    frame = dataset.interactions
    keep = frame["event"].isin(list(events)).to_numpy()
    users = frame["user"].to_numpy()[keep].astype(np.int64)
    items = frame["item"].to_numpy()[keep].astype(np.int64)
    first = ~pd.Series(users * dataset.n_items + items).duplicated().to_numpy()
    users, items = users[first], items[first]  # the frame is sorted by user, then time
    indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=dataset.n_users))].astype(np.int64)
    return Histories(indptr, items)


@dataclass
class Examples:
    """``history[j]`` (right-aligned, -1 = padding) led to the purchase of ``target[j]``."""

    history: np.ndarray  # (n, H) int64
    target: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return len(self.target)


def cross_category_examples(histories: Histories, codes: np.ndarray, max_history: int) -> Examples:
    """One example per item that opened a new category for its user (not the user's first item).

    ``codes`` are per-item category codes (-1 unknown); items of unknown category are never targets
    but stay in the histories.
    """
    items, indptr = histories.items, histories.indptr
    owner = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))  # (total,) user of each entry
    category = codes[items]
    known = np.flatnonzero(category >= 0)
    first_of_category = np.zeros(len(items), dtype=bool)
    keys = owner[known] * (int(codes.max()) + 1) + category[known]
    first_of_category[known[~pd.Series(keys).duplicated().to_numpy()]] = True
    start = indptr[owner]
    targets = np.flatnonzero(first_of_category & (np.arange(len(items)) > start))
    window = targets[:, None] - max_history + np.arange(max_history)[None, :]  # (n, H) positions
    history = np.where(window >= start[targets][:, None], items[np.maximum(window, 0)], -1)
    return Examples(history.astype(np.int64), items[targets].astype(np.int64))


class AttentionNet(nn.Module):
    """Item representations, query/key maps, a recency bias per history column and an item bias."""

    def __init__(self, codes: np.ndarray, size: int, max_history: int, text: np.ndarray | None) -> None:
        super().__init__()
        n_items = len(codes)
        self.n_items, self.size = n_items, size
        self.ids = nn.Embedding(n_items + 1, size, padding_idx=n_items)  # row n_items = padding
        n_categories = int(codes.max()) + 1
        self.category = nn.Embedding(n_categories + 1, size, padding_idx=n_categories)  # unknown = padding
        self.register_buffer("codes", torch.from_numpy(np.r_[np.where(codes < 0, n_categories, codes), n_categories]))
        for table in (self.ids, self.category):
            nn.init.normal_(table.weight, std=0.1)
            with torch.no_grad():
                table.weight[-1].zero_()
        self.project: nn.Linear | None = None
        if text is not None:
            padded = np.vstack([text, np.zeros((1, text.shape[1]), dtype=np.float32)])
            self.register_buffer("text", torch.from_numpy(padded))
            self.project = nn.Linear(text.shape[1], size, bias=False)
        self.query = nn.Linear(size, size, bias=False)
        self.key = nn.Linear(size, size, bias=False)
        with torch.no_grad():  # start as "attend to the history item the candidate goes with best"
            self.query.weight.copy_(torch.eye(size))
            self.key.weight.copy_(torch.eye(size))
        self.recency = nn.Parameter(torch.zeros(max_history))  # column H-1 = most recent
        self.bias = nn.Parameter(torch.zeros(n_items + 1))

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Item vectors (..., d): id embedding + category embedding + projected text vector."""
        out = self.ids(idx) + self.category(self.codes[idx])
        if self.project is not None:
            out = out + self.project(self.text[idx])
        return out

    def forward(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores (B, C) of candidates given right-aligned ``history`` (B, H), pad = n_items.

        ``candidates`` is (B, C), one list per row, or (C,), one list shared by every row (cheaper).
        """
        pad = history == self.n_items  # (B, H)
        eh = self.embed(history)  # (B, H, d)
        ec = self.embed(candidates)  # (B, C, d) or (C, d)
        pattern = "bhd,bcd->bhc" if candidates.dim() == 2 else "bhd,cd->bhc"
        logits = torch.einsum(pattern, self.key(eh), self.query(ec)) / math.sqrt(self.size)  # (B, H, C)
        logits = logits + self.recency[-history.shape[1] :][None, :, None]
        alpha = torch.softmax(logits.masked_fill(pad[:, :, None], -torch.inf), dim=1)  # (B, H, C)
        compat = torch.einsum(pattern, eh, ec)  # (B, H, C)
        return (alpha * compat).sum(dim=1) + self.bias[candidates]  # (B, C), bias broadcasts when shared

    def export(self) -> dict[str, np.ndarray]:
        """What numpy inference needs: item vectors (N, d), query/key maps (d, d) for ``x @ W``."""
        with torch.no_grad():
            items = self.embed(torch.arange(self.n_items))
            return {
                "items": items.numpy().astype(np.float32),
                "query": self.query.weight.T.numpy().astype(np.float32).copy(),
                "key": self.key.weight.T.numpy().astype(np.float32).copy(),
                "recency": self.recency.numpy().astype(np.float32).copy(),
                "bias": self.bias[: self.n_items].numpy().astype(np.float32).copy(),
            }


class AttentionTrainer:
    """Holds the net, optimiser and data; :meth:`train_epoch` runs one pass over the training examples."""

    def __init__(self, examples: Examples, codes: np.ndarray, text: np.ndarray | None, config) -> None:
        self.cfg = config
        self.rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        n_items = len(codes)
        self.net = AttentionNet(codes, config.embedding_size, config.max_history, text)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=config.learning_rate, weight_decay=config.reg)
        self.codes = torch.from_numpy(np.r_[codes, -2].astype(np.int64))  # padding row: category -2
        self.eligible = np.flatnonzero(codes >= 0)
        order = self.rng.permutation(len(examples))
        n_valid = min(int(len(examples) * config.valid_share), MAX_VALID)
        n_valid = n_valid if n_valid >= 20 else 0
        self.valid, self.train = order[:n_valid], order[n_valid:]
        self.lengths = (examples.history >= 0).sum(axis=1)
        self.history = torch.from_numpy(np.where(examples.history < 0, n_items, examples.history))
        self.target = torch.from_numpy(examples.target)
        self.valid_candidates = self._negatives(MAX_VALID_CANDIDATES)  # fixed, so epochs compare

    def train_epoch(self) -> dict[str, float]:
        self.net.train()
        total = 0.0
        for rows in self._batches():
            history, target = self._rows(rows)
            negatives = torch.from_numpy(self._negatives())  # (S,) shared by the batch
            positive = self.net(history, target[:, None])  # (B, 1)
            negative = self.net(history, negatives).masked_fill(self._blocked(history, target, negatives), -torch.inf)
            loss = F.cross_entropy(torch.cat([positive, negative], dim=1), torch.zeros(len(rows), dtype=torch.long))
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += loss.item() * len(rows)
        return {"loss": total / max(len(self.train), 1)}

    def valid_loss(self, chunk: int = 128) -> float:
        """Mean softmax loss of the held-out examples against the fixed validation candidates (NaN without any)."""
        if not len(self.valid):
            return float("nan")
        self.net.eval()
        total = 0.0
        eligible = torch.from_numpy(self.valid_candidates)
        with torch.no_grad():
            for start in range(0, len(self.valid), chunk):
                history, target = self._rows(self.valid[start : start + chunk])
                positive = self.net(history, target[:, None])  # (B, 1)
                negative = self.net(history, eligible).masked_fill(self._blocked(history, target, eligible), -torch.inf)
                logits = torch.cat([positive, negative], dim=1)
                total += float(F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long), reduction="sum"))
        return total / len(self.valid)

    def _batches(self) -> list[np.ndarray]:
        """Training rows in batches of similar history length (less padding), batches in random order."""
        rows = self.train[np.lexsort((self.rng.random(len(self.train)), self.lengths[self.train]))]
        batches = np.array_split(rows, max(1, math.ceil(len(rows) / self.cfg.batch_size)))
        return [batches[i] for i in self.rng.permutation(len(batches))]

    def _rows(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Histories cut to the longest in ``rows`` (right-aligned, so the first columns go) and targets."""
        width = max(int(self.lengths[rows].max()), 1)
        index = torch.from_numpy(rows)
        return self.history[index, -width:], self.target[index]

    def _negatives(self, n: int | None = None) -> np.ndarray:
        n = self.cfg.n_negatives if n is None else n
        if n >= len(self.eligible):
            return self.eligible
        return np.sort(self.rng.choice(self.eligible, n, replace=False))

    def _blocked(self, history: torch.Tensor, target: torch.Tensor, negatives: np.ndarray) -> torch.Tensor:
        """(B, S): negatives in a category of the row's history (never recommendable) or equal to its target."""
        negatives = torch.as_tensor(negatives)
        same = (self.codes[negatives][None, None, :] == self.codes[history][:, :, None]).any(dim=1)  # (B, S)
        return same | (negatives[None, :] == target[:, None])


def train_attention(
    examples: Examples, codes: np.ndarray, text: np.ndarray | None, config
) -> tuple[dict[str, np.ndarray], dict]:
    """Train with early stopping on the held-out examples; the best epoch's exported weights and a log."""
    trainer = AttentionTrainer(examples, codes, text, config)
    log: dict = {"examples": len(examples), "train_examples": len(trainer.train), "valid_examples": len(trainer.valid)}
    log.update(loss=[], valid_loss=[], best_epoch=0)
    best, best_state, waited = math.inf, None, 0
    began = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        log["loss"].append(round(trainer.train_epoch()["loss"], 5))
        valid = trainer.valid_loss()
        log["valid_loss"].append(round(valid, 5))
        if math.isnan(valid) or valid < best:
            best, best_state, waited, log["best_epoch"] = valid, copy.deepcopy(trainer.net.state_dict()), 0, epoch
        else:
            waited += 1
            if waited >= config.patience:
                break
    trainer.net.load_state_dict(best_state)
    log["epochs"] = len(log["loss"])
    log["seconds"] = round(time.perf_counter() - began, 2)
    return trainer.net.export(), log
