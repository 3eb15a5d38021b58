"""Next-item recommenders over the user's recent items: SASRec (causal self-attention) and a GRU.

Both read each user's history (oldest first, back-to-back repeats collapsed), represent items by
a learned id embedding fused with a projection of the frozen text vector from the language-model
layer (``item_repr="fused"``; ``"id"`` and ``"text"`` for ablations), and are trained with a
softmax over the catalogue to predict every next item (see :mod:`shoprec.models.seqtrain`).
Scores are the dot product of the user's last hidden state with each item's vector.

Inference takes the latest events: :meth:`SequentialRecommender.score_histories` scores any item
sequence, so a live session is scored without retraining.

>>> model = create_model("sasrec", encoder="minilm", cache_dir="cache/").fit(train)   # doctest: +SKIP
>>> model.score_histories([np.array([12, 40, 7])]).shape                            # doctest: +SKIP
(1, n_items)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.models.base import Recommender
from shoprec.models.registry import register
from shoprec.models.seqnets import GRUNet, ItemTable, SASRecNet
from shoprec.models.seqtrain import Examples, TrainLog, Validation, left_pad, train, user_histories
from shoprec.models.textside import TextVectors, check_mode, torch_threads


@dataclass
class SequentialConfig:
    item_repr: str = "fused"
    """``fused`` (id embedding + text projection), ``id`` (ids only) or ``text`` (text only)."""
    encoder: str = "auto"
    """Text encoder for the item vectors (``auto``, ``minilm``, ``minilm-int8``, ``use-multilingual``
    or a model folder); unused when ``item_repr="id"`` or vectors are handed over."""
    cache_dir: str | None = None
    """Item-vector cache folder: refits re-encode only new or changed item texts."""
    embedding_size: int = 128
    """Width of item vectors and hidden states. On Amazon Beauty (validation NDCG@10, fused):
    64 -> 0.0557, 128 -> 0.0588."""
    max_len: int = 50
    """Most recent items the model reads; longer histories train as several windows."""
    layers: int = 2
    """Transformer blocks (SASRec) or GRU layers."""
    heads: int = 2
    """Attention heads (SASRec); must divide embedding_size."""
    dropout: float = 0.5
    """Dropout on embeddings and inside blocks; high values suit sparse shop data."""
    epochs: int = 200
    """Upper bound on passes over the data; early stopping usually ends training sooner."""
    warm_epochs: int = 30
    """Upper bound on epochs of a fit warm-started from a previous model (see ``warm_start``)."""
    patience: int = 5
    """Epochs without a gain in validation NDCG@10 before training stops."""
    batch_size: int = 256
    """Sequences per step."""
    learning_rate: float = 1e-3
    """Adam step size. Amazon Beauty validation NDCG@10 (fused, 128-d): 2e-3 -> 0.0588, 1e-3 -> 0.0603."""
    weight_decay: float = 0.0
    """Adam L2 penalty."""
    negatives: int = 2048
    """Softmax of the target against this many shared random items per step (0, or a catalogue no
    larger: the whole catalogue). On Amazon Beauty (12k items) 2048 trains 3x faster per epoch
    than the full softmax."""
    valid_users: int = 10_000
    """Users whose last training item is held out for early stopping (0: no early stopping)."""
    collapse_repeats: bool = True
    """Count an item repeated back to back (view, cart, purchase) once in the history."""
    threads: int = 2
    """torch CPU threads while training and scoring."""
    seed: int = 42
    """Seed for weights, batch order, negatives and the validation sample."""

    def __post_init__(self) -> None:
        check_mode(self.item_repr, "sequential model")
        whole = ("embedding_size", "max_len", "layers", "heads", "epochs", "warm_epochs", "patience", "batch_size")
        for name in (*whole, "threads"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ModelError(f"sequential model: {name} must be a whole number >= 1, got {value!r}")
        if self.embedding_size % self.heads:
            raise ModelError(
                f"sequential model: heads ({self.heads}) must divide embedding_size ({self.embedding_size})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"sequential model: dropout must be in [0, 1), got {self.dropout!r}")
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ModelError("sequential model: learning_rate must be > 0 and weight_decay >= 0")
        if self.negatives < 0 or self.valid_users < 0:
            raise ModelError("sequential model: negatives and valid_users must be >= 0")


class SequentialRecommender(Recommender):
    """Shared fitting, scoring, live inference and persistence of the sequence models."""

    config_class = SequentialConfig
    arch = "sasrec"
    warm_startable = True

    def __init__(self, config: SequentialConfig | None = None, **settings: object) -> None:
        super().__init__(config, **settings)
        self.text = TextVectors(self.config.encoder, self.config.cache_dir, model=self.name)
        self.net: torch.nn.Module | None = None
        self.user_vectors: np.ndarray | None = None  # (n_users, D) last hidden state of each history
        self.item_matrix: np.ndarray | None = None  # (n_items, D) output item vectors
        self.log = TrainLog()
        self.fit_stats: dict[str, int] = {}

    def set_item_vectors(self, vectors: np.ndarray) -> SequentialRecommender:
        """Use these text vectors (row i = item index i) at the next fit instead of encoding."""
        self.text.set(vectors)
        return self

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        histories = user_histories(dataset, cfg.collapse_repeats)
        lengths = np.array([len(h) for h in histories])
        if lengths.max(initial=0) < 2:
            raise ModelError(f"{self.name}: no user has two or more items in sequence: nothing to learn from")
        text = None if cfg.item_repr == "id" else torch.from_numpy(self.text.vectors(dataset))
        trained = torch.from_numpy(np.asarray(dataset.matrix("binary").getnnz(axis=0) > 0))
        torch.manual_seed(cfg.seed)
        self.net = self._build(dataset.n_items, text, trained)
        settings = cfg
        if self.warm is not None:
            warm_item_net(self.net, self.warm.previous.net, self.warm.items)
            settings = replace(cfg, epochs=cfg.warm_epochs)
        self._table = None  # the input table of a previous fit is stale
        examples, validation = self._examples(histories, np.random.default_rng(cfg.seed))
        self.fit_stats = {
            "users": int((lengths > 0).sum()),
            "users_with_one_item": int((lengths == 1).sum()),
            "training_windows": len(examples),
            "training_targets": examples.n_targets(),
            "validation_users": len(validation),
        }
        with torch_threads(cfg.threads):
            self.log = train(self.net, examples, validation if cfg.valid_users else None, settings, self.progress)
            self._finalise(histories)

    def _build(self, n_items: int, text: torch.Tensor | None, trained: torch.Tensor) -> torch.nn.Module:
        cfg = self.config
        table = ItemTable(n_items, cfg.embedding_size, cfg.item_repr, text, trained)
        if self.arch == "gru":
            return GRUNet(table, cfg.embedding_size, cfg.layers, cfg.dropout)
        return SASRecNet(table, cfg.embedding_size, cfg.max_len, cfg.layers, cfg.heads, cfg.dropout)

    def _examples(self, histories: list[np.ndarray], rng: np.random.Generator) -> tuple[Examples, Validation]:
        """Training windows and the validation set (last item of a sample of users held out)."""
        cfg = self.config
        candidates = np.flatnonzero([len(h) >= 3 and h[-1] not in h[:-1] for h in histories])
        chosen = rng.choice(candidates, size=min(cfg.valid_users, len(candidates)), replace=False)
        held = np.zeros(len(histories), dtype=bool)
        held[chosen] = True
        examples = Examples()
        for user, history in enumerate(histories):
            examples.add(history[:-1] if held[user] else history, cfg.max_len)
        chosen = np.sort(chosen)
        validation = Validation(
            inputs=[histories[u][:-1][-cfg.max_len :] for u in chosen],
            seen=[histories[u][:-1] for u in chosen],
            targets=np.array([histories[u][-1] for u in chosen], dtype=np.int64),
        )
        return examples, validation

    @torch.no_grad()
    def _finalise(self, histories: list[np.ndarray]) -> None:
        """Precompute every user's state from the whole history and the output item vectors."""
        self.net.eval()
        table = self.net.items.all()
        self._table = table
        self.item_matrix = table[1:].numpy().astype(np.float32)
        self.user_vectors = self._encode(histories, table)

    @torch.no_grad()
    def _input_table(self) -> torch.Tensor:
        """The (n_items + 1, D) input item table, computed once per fitted net: building it
        projects every item's text vector, which costs far more than one history's forward pass."""
        if getattr(self, "_table", None) is None:
            self.net.eval()
            self._table = self.net.items.all()
        return self._table

    def _encode(self, histories: list[np.ndarray], table: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
        out = np.zeros((len(histories), self.config.embedding_size), dtype=np.float32)
        order = np.argsort([len(h) for h in histories], kind="stable")  # similar lengths together
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            windows = [histories[r][-self.config.max_len :] for r in rows]
            if not any(len(w) for w in windows):
                continue
            out[rows] = self.net(left_pad(windows), table)[:, -1].numpy()  # (B, D)
        return out

    # ------------------------------------------------------------------ scoring
    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_vectors[np.asarray(users, dtype=np.int64)] @ self.item_matrix.T  # (n, n_items)

    @torch.no_grad()
    def score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        """Scores of every item after each given item-index sequence (oldest first): (n, n_items).

        This is how a live session is scored: pass the user's latest items, no retraining needed.
        Items outside ``0..n_items-1`` are an error; an empty history gets popularity scores.
        """
        if self.net is None:
            raise ModelError(f"model '{self.name}' is not fitted: call fit(dataset) first")
        shifted = []
        for i, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64).ravel()
            if len(h) and (h.min() < 0 or h.max() >= self.n_items):
                raise ModelError(f"history {i}: item indices must lie in 0..{self.n_items - 1}")
            shifted.append(h + 1)
        threads = 1 if len(shifted) < 64 else self.config.threads  # a request: no thread team to start
        with torch_threads(threads):
            self.net.eval()
            vectors = self._encode(shifted, self._input_table())
        scores = vectors @ self.item_matrix.T
        empty = np.array([len(h) == 0 for h in shifted])
        scores[empty] = self.fallback_scores
        return scores.astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{k}": v.detach().numpy() for k, v in self.net.state_dict().items()}
        arrays["user_vectors"], arrays["item_matrix"] = self.user_vectors, self.item_matrix
        arrays["train_log"] = np.frombuffer(_json(self.log).encode(), dtype=np.uint8)
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        import json

        self.user_vectors, self.item_matrix = arrays["user_vectors"], arrays["item_matrix"]
        self.log = TrainLog(**json.loads(arrays["train_log"].tobytes().decode()))
        weights = {k[len("net.") :]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("net.")}
        text = weights.get("items.text")
        self.net = self._build(self.n_items, None if text is None else text[1:], weights["items.trained"][1:, 0])
        self.net.load_state_dict(weights)
        self.net.eval()
        self._table = None


@torch.no_grad()
def warm_item_net(net: torch.nn.Module, previous: torch.nn.Module, items: np.ndarray) -> None:
    """Start ``net`` (built for the new catalogue) from ``previous``'s weights.

    Everything but the item table is copied as is (same architecture and sizes required); id rows
    of known items are copied by ``items`` (new index -> previous index, -1 new). A new item's id
    row starts at zero, so in ``fused`` and ``text`` modes its vector is the previous projection of
    its text; in ``id`` mode it keeps the fresh random row of a cold start.
    """
    old, new = previous.state_dict(), net.state_dict()
    skip = {"items.ids.weight", "items.text", "items.trained"}
    for name, tensor in new.items():
        if name in skip:
            continue
        if name not in old or old[name].shape != tensor.shape:
            shape = tuple(old[name].shape) if name in old else "none"
            raise ModelError(
                f"cannot warm start: the previous model's {name} has shape {shape}, this one {tuple(tensor.shape)} "
                "(embedding_size, max_len, layers, heads and the text encoder must match)"
            )
        tensor.copy_(old[name])
    if "items.ids.weight" in new:
        rows = new["items.ids.weight"]  # (n_items + 1, D), row 0 padding
        known = np.flatnonzero(items >= 0)
        if "items.text" in new:  # fused: the text projection places a new item
            rows[1:][torch.from_numpy(items < 0)] = 0.0
        rows[torch.from_numpy(known + 1)] = old["items.ids.weight"][torch.from_numpy(items[known] + 1)]


def _json(log: TrainLog) -> str:
    import json

    return json.dumps(asdict(log))


@register
class SASRec(SequentialRecommender):
    """Causal self-attention over the user's recent items (SASRec), text-aware item vectors."""

    name = "sasrec"
    arch = "sasrec"


@register
class GRU4Rec(SequentialRecommender):
    """A GRU over the user's recent items, trained and scored like SASRec (the simpler baseline)."""

    name = "gru4rec"
    arch = "gru"
