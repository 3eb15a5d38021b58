"""LightGCN (He et al., SIGIR 2020): embeddings smoothed over the user-item graph, PyTorch + scipy.

Users and items are nodes of one bipartite graph (an edge per user-item pair in the training
data). Layer 0 holds a learned vector per user and per item; each further layer is the
symmetrically normalised adjacency ``D^-1/2 A D^-1/2`` times the previous one (no weights, no
non-linearity), and a node's final vector is the mean of its layers. Scores are dot products of
final user and item vectors, precomputed after training, so a loaded model needs no torch graph.

Item layer 0 can read text (``item_repr``): a learned id vector, plus (``fused``) or instead of
(``text``) a linear projection of the frozen text vector from the language-model layer. Items
without training interactions (or whose only ones were held out for early stopping) get no id
part, so in ``fused`` and ``text`` modes they are placed by their text alone (and keep that vector,
since no edge smooths it); in ``id`` mode they score 0. With ``item_graph_weight`` > 0 the
:class:`~shoprec.models.itemgraph.ItemGraph`'s co_basket and consecutive edges join the adjacency
as an item-item block, so propagation also flows between items bought together or one after the
other; that graph is saved with the model.

Training: every step propagates over the whole graph once and updates a batch of user-item edges
(Beauty: 400k adjacency entries, 34k nodes; the sparse products run in scipy, see
:class:`SymmetricSpMM`), so large batches and a high learning rate make training cheap: the
defaults stop after 12-19 epochs of 19 steps. On Beauty (22k users, 12k items, 2 cores shared
with another 2-thread job, so pessimistic) training took 140-210 s and encoding the titles from
scratch about 200 s more; scoring all 22k users for evaluation took 4-5 s. Early stopping holds
out the last training item of ``valid_users`` users, ranks the full catalogue for them after
every epoch, stops when NDCG@10 has not improved for ``patience`` epochs and keeps the best
epoch's weights. The final vectors propagate over *all* training edges, the held-out ones included.

Loss: ``softmax`` (the default), cross-entropy of each positive against ``negatives`` items drawn
uniformly and shared by the batch (``negatives=0``: the whole catalogue), or the classic ``bpr``
with one uniform negative per positive. Measured on Amazon Beauty validation (``item_repr="id"``,
batch 8192, learning rate 0.01, the same early stopping): softmax (reg 0.1) reached NDCG@10
0.0376 / HR@10 0.0713 in 24 epochs; BPR (its usual reg 1e-4) 0.0345 / 0.0661 after 30 epochs in the same time,
still gaining about 0.0002 an epoch. A softmax over many negatives draws a gradient from every
hard negative at once, where one random negative is mostly an easy one.

>>> model = create_model("lightgcn", encoder="minilm", cache_dir="cache/").fit(train)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.models.base import Recommender
from shoprec.models.itemgraph import ItemGraph
from shoprec.models.registry import register
from shoprec.models.seqtrain import EarlyStopping, TrainLog
from shoprec.models.textside import TextVectors, check_mode, torch_threads
from shoprec.models.warmstart import carry_rows
from shoprec.ranks import ndcg_of_ranks, target_ranks

LOSSES = ("softmax", "bpr")
LAYER0 = ("users", "ids", "project.weight", "project.bias")
"""Parameters kept after a fit for a later warm start."""
GRAPH_EDGES = {"co_basket": 1.0, "consecutive": 1.0}
"""Item-graph edge types (and their relative weights) added to the propagation graph."""


@dataclass
class LightGCNConfig:
    embedding_size: int = 64
    """Width of user and item vectors (64 as in the LightGCN paper)."""
    layers: int = 3
    """Propagation steps; 0 makes the model plain matrix factorisation. Beauty: 2 layers -4% NDCG@10."""
    epochs: int = 100
    """Upper bound on passes over the training edges; early stopping usually ends sooner (Beauty:
    best epoch 7-14 with the defaults)."""
    warm_epochs: int = 20
    """Upper bound on epochs of a fit warm-started from a previous model (see ``warm_start``)."""
    learning_rate: float = 0.02
    """Adam step size. Beauty (fused): 0.02 reached the NDCG@10 of 0.01 in half the epochs."""
    reg: float = 0.1
    """L2 penalty on the layer-0 vectors of each batch's users and positive items (LightGCN's
    lambda; per row, halved, averaged over the batch). Beauty: 0.1 best of 1e-4..0.3 (1e-4: -9%
    NDCG@10, 0.3: -26%); the softmax loss overfits from about epoch 10 without it."""
    batch_size: int = 8192
    """User-item edges per step; every step propagates over the whole graph once, so larger
    batches make epochs cheaper (Beauty: 19 steps per epoch)."""
    loss: str = "softmax"
    """``softmax`` (positive against shared sampled items) or ``bpr`` (one negative per positive);
    softmax is 9% better on Beauty in the same time (see the module docstring)."""
    negatives: int = 1000
    """Softmax only: uniform items shared by a batch as negatives; 0 = the whole catalogue (its
    (batch, n_items) logits cost memory and time on large catalogues)."""
    item_repr: str = "fused"
    """``fused`` (id vector + text projection), ``id`` (ids only) or ``text`` (text only). Beauty
    validation NDCG@10 / HR@10: fused 0.0387 / 0.0737, id 0.0378 / 0.0705 (and fused places items
    without training interactions by their text)."""
    encoder: str = "auto"
    """Text encoder for the item vectors (``auto``, ``minilm``, ``minilm-int8``,
    ``use-multilingual`` or a model folder); unused with ``item_repr="id"`` or handed-over vectors."""
    cache_dir: str | None = None
    """Item-vector cache folder: refits re-encode only new or changed item texts."""
    item_graph_weight: float = 0.0
    """Weight of item-item edges (co_basket + consecutive, cosine-weighted) next to the user-item
    edges (weight 1) in the propagation graph; 0 leaves the item graph out. Off by default: on
    Beauty (no baskets, consecutive edges only) 0.5 changed validation NDCG@10 by +0.8%, within
    noise."""
    patience: int = 5
    """Epochs without a gain in validation NDCG@10 before training stops (on Beauty the curve is
    flat and noisy near its top, wobbling by about 0.001 from epoch to epoch)."""
    valid_users: int = 5000
    """Users whose last training item is held out for early stopping (0, or no user with 3+
    events: train all epochs). 2,000 users gave a validation NDCG@10 too noisy to stop on."""
    threads: int = 2
    """torch CPU threads while training."""
    seed: int = 42
    """Seed for the weights, the edge order, the negatives and the validation sample."""

    def __post_init__(self) -> None:
        check_mode(self.item_repr, "lightgcn")
        for name, least in (("embedding_size", 1), ("layers", 0), ("epochs", 1), ("warm_epochs", 1), ("batch_size", 1)):
            _whole(name, getattr(self, name), least)
        for name in ("patience", "threads", "negatives", "valid_users"):
            _whole(name, getattr(self, name), 1 if name in ("patience", "threads") else 0)
        if not (isinstance(self.learning_rate, float | int) and self.learning_rate > 0):
            raise ModelError(f"lightgcn: learning_rate must be > 0, got {self.learning_rate!r}")
        if not (isinstance(self.reg, float | int) and self.reg >= 0):
            raise ModelError(f"lightgcn: reg must be >= 0, got {self.reg!r}")
        if self.loss not in LOSSES:
            raise ModelError(f"lightgcn: loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        weight = self.item_graph_weight
        if not (isinstance(weight, float | int) and math.isfinite(weight) and weight >= 0):
            raise ModelError(f"lightgcn: item_graph_weight must be a finite number >= 0 (0: off), got {weight!r}")


def _whole(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ModelError(f"lightgcn: {name} must be a whole number >= {least}, got {value!r}")


# ---------------------------------------------------------------------------- graph
def adjacency(user_items: sp.csr_matrix, item_items: sp.csr_matrix | None, weight: float) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of ``A = [[0, R], [R^T, weight * G]]``: (n_users + n_items) square, float32."""
    item_block = None if item_items is None or weight == 0 else item_items * np.float32(weight)
    a = sp.bmat([[None, user_items], [user_items.T, item_block]], format="csr", dtype=np.float32)
    degree = np.asarray(a.sum(axis=1)).ravel()
    scale = np.zeros_like(degree)
    np.power(degree, -0.5, out=scale, where=degree > 0)
    return (sp.diags(scale) @ a @ sp.diags(scale)).tocsr().astype(np.float32)


class SymmetricSpMM(torch.autograd.Function):
    """``adj @ x`` for a symmetric scipy CSR ``adj``, differentiable in ``x``: the gradient is
    ``adj @ grad`` again.

    scipy's product is used rather than torch's sparse CSR one: on Beauty's graph (400k edges,
    64 columns) it takes 6.5 ms on one core against 25-40 ms for torch 2.13 on two, which fills an
    output with zeros, copies it and converts int64 indices on every call. It also adds up each
    row in a fixed order, so training is deterministic.
    """

    @staticmethod
    def forward(ctx, adj: sp.csr_matrix, x: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj
        return torch.from_numpy(adj @ x.detach().contiguous().numpy())

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, torch.from_numpy(ctx.adj @ grad.contiguous().numpy())


class LightGCNNet(nn.Module):
    """Layer-0 vectors of users and items (ids, text projection or both) and their propagation."""

    def __init__(self, n_users: int, n_items: int, dim: int, mode: str, text: torch.Tensor | None, trained: np.ndarray):
        super().__init__()
        self.n_users = n_users
        self.users = nn.Parameter(torch.randn(n_users, dim) * 0.1)
        self.ids = nn.Parameter(torch.randn(n_items, dim) * 0.1) if mode != "text" else None
        self.project = nn.Linear(text.shape[1], dim) if mode != "id" else None
        self.register_buffer("text", text.float() if mode != "id" else None)
        self.register_buffer("trained", torch.from_numpy(trained.astype(np.float32)).unsqueeze(1))  # (n_items, 1)

    def layer0(self) -> torch.Tensor:
        """(n_users + n_items, dim): users first, then items."""
        items = 0.0
        if self.ids is not None:
            items = self.ids * self.trained  # an item never trained has no id part
        if self.project is not None:
            items = items + self.project(self.text)
        return torch.cat([self.users, items])

    def forward(self, adj: sp.csr_matrix, layers: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(final vectors = mean over layers, layer-0 vectors), both (n_nodes, dim)."""
        x = e0 = self.layer0()
        total = e0
        for _ in range(layers):
            x = SymmetricSpMM.apply(adj, x)
            total = total + x
        return total / (layers + 1), e0


# ---------------------------------------------------------------------------- training
@dataclass
class Holdout:
    """The last training item of a sample of users, kept out of the training graph."""

    users: np.ndarray  # (V,) int64
    items: np.ndarray  # (V,) int64

    def __len__(self) -> int:
        return len(self.users)


def pick_holdout(dataset: Dataset, n_users: int, rng: np.random.Generator) -> Holdout:
    """Each sampled user's last item, among users with 3+ events whose last item is new to them."""
    seqs = dataset.sequences()
    lengths = seqs.lengths()
    users = np.flatnonzero(lengths >= 3)
    last = seqs.items[seqs.indptr[users + 1] - 1].astype(np.int64)
    seen = dataset.matrix("count")
    once = np.asarray(seen[users, last]).ravel() == 1  # a repeat item would stay in the training graph
    users, last = users[once], last[once]
    chosen = np.sort(rng.choice(len(users), size=min(n_users, len(users)), replace=False))
    return Holdout(users[chosen].astype(np.int64), last[chosen])


def without(matrix: sp.csr_matrix, holdout: Holdout) -> sp.csr_matrix:
    """``matrix`` with the held-out user-item entries removed."""
    drop = sp.csr_matrix((np.ones(len(holdout)), (holdout.users, holdout.items)), shape=matrix.shape)
    out = matrix - matrix.multiply(drop)
    out.eliminate_zeros()
    return out.tocsr()


def ndcg_at_10(
    user_vectors: np.ndarray, item_vectors: np.ndarray, seen: sp.csr_matrix, targets: np.ndarray, block: int = 1024
) -> float:
    """Mean NDCG@10 of one target per user over the full catalogue minus the user's ``seen`` items;
    ties ranked as :func:`shoprec.ranks.top_k` lists them (score, then item index)."""
    gains = []
    for start in range(0, len(targets), block):
        scores = user_vectors[start : start + block] @ item_vectors.T  # (b, n_items)
        coo = seen[start : start + block].tocoo()
        scores[coo.row, coo.col] = -np.inf
        gains.append(ndcg_of_ranks(target_ranks(scores, targets[start : start + block]), 10))
    return float(np.concatenate(gains).mean()) if gains else float("nan")


def batch_loss(
    net: LightGCNNet,
    adj: sp.csr_matrix,
    users: torch.Tensor,
    items: torch.Tensor,
    cfg: LightGCNConfig,
    rng: torch.Generator,
) -> torch.Tensor:
    """Loss of one batch of user-item edges (indices into users and items), regularisation included.

    Rows of the final and layer-0 tables are gathered once each: every gather costs a pass over
    the whole (n_nodes, D) gradient in the backward step, as much as the arithmetic here.
    """
    final, e0 = net(adj, cfg.layers)  # (n_nodes, D) each
    n_users, n_items, size = net.n_users, final.shape[0] - net.n_users, len(users)
    if cfg.loss == "bpr":
        negatives = torch.randint(0, n_items, (size,), generator=rng)
    elif cfg.negatives > 0:
        negatives = torch.randint(0, n_items, (cfg.negatives,), generator=rng)  # shared by the batch
    else:
        negatives = torch.arange(n_items)  # the whole catalogue
    rows = torch.cat([users, n_users + items, n_users + negatives])
    picked = final[rows]  # (B + B + N, D)
    u, i, j = picked[:size], picked[size : 2 * size], picked[2 * size :]
    if cfg.loss == "bpr":
        loss = -F.logsigmoid((u * i).sum(-1) - (u * j).sum(-1)).mean()
        penalised = rows
    else:
        positive = (u * i).sum(-1, keepdim=True)  # (B, 1)
        negative = (u @ j.T).masked_fill(negatives.unsqueeze(0) == items.unsqueeze(1), float("-inf"))  # (B, N)
        loss = F.cross_entropy(torch.cat([positive, negative], dim=1), torch.zeros_like(items))
        penalised = rows[: 2 * size]  # users and positives, as LightGCN does
    return loss + cfg.reg * e0[penalised].pow(2).sum() / (2 * size)


def train(
    net: LightGCNNet, adj: sp.csr_matrix, edges: sp.csr_matrix, holdout: Holdout, cfg: LightGCNConfig, progress: bool
) -> TrainLog:
    """Adam over shuffled batches of ``edges`` (users x items CSR); early stopping on ``holdout``."""
    order_rng = np.random.default_rng(cfg.seed)
    sampler = torch.Generator().manual_seed(cfg.seed)
    coo = edges.tocoo()
    pairs = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))  # (2, n_edges)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, fused=True)
    log = TrainLog()
    stopping = EarlyStopping(log, cfg.patience)
    started = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="training lightgcn", unit="epoch", disable=not progress)
    for epoch in bar:
        net.train()
        total, steps = 0.0, 0
        order = torch.from_numpy(order_rng.permutation(pairs.shape[1]))
        for start in range(0, len(order), cfg.batch_size):
            users, items = pairs[:, order[start : start + cfg.batch_size]]
            loss = batch_loss(net, adj, users, items, cfg, sampler)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total, steps = total + float(loss.detach()), steps + 1
        log.epochs = epoch + 1
        log.loss.append(total / max(steps, 1))
        if not len(holdout):
            bar.set_postfix(loss=f"{log.loss[-1]:.4f}")
            continue
        ndcg = validate(net, adj, edges, holdout, cfg.layers)
        stop = stopping.update(net, ndcg, epoch)
        bar.set_postfix(loss=f"{log.loss[-1]:.4f}", ndcg10=f"{ndcg:.4f}", best=f"{log.best_ndcg:.4f}@{log.best_epoch}")
        if stop:
            break
    else:
        log.stopped = f"reached epochs={cfg.epochs}"
    stopping.restore(net)
    log.seconds = time.perf_counter() - started
    return log


@torch.no_grad()
def validate(net: LightGCNNet, adj: sp.csr_matrix, edges: sp.csr_matrix, holdout: Holdout, layers: int) -> float:
    """NDCG@10 of the held-out items, ranked over the catalogue minus each user's training items."""
    net.eval()
    final, _ = net(adj, layers)
    final = final.numpy()
    users, items = final[holdout.users], final[net.n_users :]
    return ndcg_at_10(users, items, edges[holdout.users], holdout.items)


# ---------------------------------------------------------------------------- the recommender
@register
class LightGCN(Recommender):
    """Graph-smoothed user and item vectors, items optionally read from their text."""

    name = "lightgcn"
    config_class = LightGCNConfig
    warm_startable = True

    def __init__(self, config: LightGCNConfig | None = None, **settings: object) -> None:
        super().__init__(config, **settings)
        self.text = TextVectors(self.config.encoder, self.config.cache_dir, model=self.name)
        self.user_vectors: np.ndarray | None = None  # (n_users, D) final vectors
        self.item_vectors: np.ndarray | None = None  # (n_items, D) final vectors
        self.item_graph: ItemGraph | None = None
        self.layer0: dict[str, np.ndarray] = {}
        """Layer-0 parameters (users, ids, text projection) a later fit can warm start from."""
        self.log = TrainLog()
        self.fit_stats: dict[str, int] = {}
        self.progress = False
        """Show a progress bar with the loss and validation NDCG@10 while fitting."""

    def set_item_vectors(self, vectors: np.ndarray) -> LightGCN:
        """Use these text vectors (row i = item index i) at the next fit instead of encoding."""
        self.text.set(vectors)
        return self

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        full = dataset.matrix("binary")
        holdout = pick_holdout(dataset, cfg.valid_users, np.random.default_rng(cfg.seed))
        edges = without(full, holdout)
        text = None if cfg.item_repr == "id" else torch.from_numpy(self.text.vectors(dataset))
        trained = edges.getnnz(axis=0) > 0
        train_graph, self.item_graph = self._item_graphs(dataset, holdout)
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            net = LightGCNNet(dataset.n_users, dataset.n_items, cfg.embedding_size, cfg.item_repr, text, trained)
        if self.warm is not None:
            warm_layer0(net, self.warm.previous.layer0, self.warm.items, self.warm.users)
            cfg = replace(cfg, epochs=cfg.warm_epochs)
        self.fit_stats = {
            "training_edges": int(edges.nnz),
            "validation_users": len(holdout),
            "items_without_training_edges": int((~trained).sum()),
        }
        with torch_threads(cfg.threads):
            adj = adjacency(edges, train_graph, cfg.item_graph_weight)
            self.log = train(net, adj, edges, holdout, cfg, self.progress)
            self._finalise(net, full)

    def _item_graphs(self, dataset: Dataset, holdout: Holdout) -> tuple[sp.csr_matrix | None, ItemGraph | None]:
        """Item-graph block for training (held-out events left out) and the graph kept with the model."""
        if self.config.item_graph_weight == 0:
            return None, None
        full = ItemGraph.build(dataset, co_basket=True, consecutive=True, text_neighbors=0)
        if not len(holdout):
            return full.combined(GRAPH_EDGES), full
        frame = dataset.interactions
        pairs = frame["user"].to_numpy(np.int64) * dataset.n_items + frame["item"].to_numpy(np.int64)
        held = np.isin(pairs, holdout.users * dataset.n_items + holdout.items)
        train_graph = ItemGraph.build(dataset.subset(~held), co_basket=True, consecutive=True, text_neighbors=0)
        return train_graph.combined(GRAPH_EDGES), full

    @torch.no_grad()
    def _finalise(self, net: LightGCNNet, full: sp.csr_matrix) -> None:
        """Final vectors over all training edges; a node without edges keeps its layer-0 vector."""
        net.eval()
        block = None if self.item_graph is None else self.item_graph.combined(GRAPH_EDGES)
        adj = adjacency(full, block, self.config.item_graph_weight)
        final, e0 = net(adj, self.config.layers)
        isolated = torch.from_numpy(adj.getnnz(axis=1) == 0)
        final[isolated] = e0[isolated]
        final = final.numpy().astype(np.float32)
        self.user_vectors, self.item_vectors = final[: self.n_users], final[self.n_users :]
        self.layer0 = {k: v.numpy().copy() for k, v in net.state_dict().items() if k in LAYER0}

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_vectors[np.asarray(users, dtype=np.int64)] @ self.item_vectors.T  # (n, n_items)

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"user_vectors": self.user_vectors, "item_vectors": self.item_vectors}
        arrays["train_log"] = np.frombuffer(json.dumps(asdict(self.log)).encode(), dtype=np.uint8)
        arrays.update({f"layer0.{k}": v for k, v in self.layer0.items()})
        if self.item_graph is not None:
            arrays.update(self.item_graph.to_arrays(prefix="graph."))
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_vectors, self.item_vectors = arrays["user_vectors"], arrays["item_vectors"]
        self.log = TrainLog(**json.loads(arrays["train_log"].tobytes().decode()))
        self.item_graph = ItemGraph.from_arrays(arrays, prefix="graph.") if "graph.meta" in arrays else None
        self.layer0 = {k[len("layer0.") :]: np.asarray(v) for k, v in arrays.items() if k.startswith("layer0.")}


@torch.no_grad()
def warm_layer0(net: LightGCNNet, previous: dict[str, np.ndarray], items: np.ndarray, users: np.ndarray) -> None:
    """Start ``net``'s layer 0 from a previous model's (``LightGCN.layer0``), rows matched by the maps.

    Known users and items keep their vectors and the text projection is copied; a new item's id row
    starts at zero, so in ``fused`` mode it is placed by its text alone (``id`` mode: the cold start's
    random row); a new user keeps the cold start's random row.
    """
    if not previous:
        raise ModelError("lightgcn: the previous model has no layer-0 parameters (saved before warm starts)")
    new = net.state_dict()
    for name in ("project.weight", "project.bias"):
        if name in new and (name not in previous or previous[name].shape != tuple(new[name].shape)):
            raise ModelError(f"lightgcn: cannot warm start: {name} differs (item_repr and text encoder must match)")
        if name in new:
            new[name].copy_(torch.from_numpy(previous[name]))
    fresh = new["users"].numpy()
    new["users"].copy_(torch.from_numpy(carry_rows(previous["users"], users, fresh)))
    if "ids" in new and new["ids"] is not None and "ids" in previous:
        fresh = new["ids"].numpy() * (0.0 if net.project is not None else 1.0)
        new["ids"].copy_(torch.from_numpy(carry_rows(previous["ids"], items, fresh.astype(np.float32))))
