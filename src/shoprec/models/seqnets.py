"""The networks behind the sequential recommenders: an item table that can read text, a causal
Transformer (SASRec) and a GRU, all mapping a batch of item sequences to one hidden state per
position.

Item indices are shifted by one inside the networks: row 0 is padding, row ``i + 1`` is item
``i``. Sequences are left-padded, so the last column always holds the most recent item.
"""

from __future__ import annotations

import torch
from torch import nn


class ItemTable(nn.Module):
    """Item vectors from a learned id embedding, a projection of a frozen text vector, or both.

    ``mode``: ``fused`` (id + text), ``id`` or ``text``. Items without training interactions get
    no id part (``trained`` is 0 for them), so in ``fused`` and ``text`` modes they are still
    placed by their text, and an untrained random id vector never adds noise.
    """

    def __init__(
        self, n_items: int, dim: int, mode: str, text: torch.Tensor | None, trained: torch.Tensor | None
    ) -> None:
        super().__init__()
        self.mode = mode
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=0) if mode != "text" else None
        if self.ids is not None:
            nn.init.normal_(self.ids.weight, std=0.02)
            with torch.no_grad():
                self.ids.weight[0].zero_()
        if mode != "id":
            if text is None:
                raise ValueError(f"item mode '{mode}' needs text vectors")
            padded = torch.cat([torch.zeros(1, text.shape[1]), text.float()])  # (n_items + 1, text_dim)
            self.register_buffer("text", padded, persistent=True)
            self.project = nn.Linear(text.shape[1], dim)
        else:
            self.text, self.project = None, None
        mask = torch.ones(n_items + 1) if trained is None else torch.cat([torch.zeros(1), trained.float()])
        mask[0] = 0.0
        self.register_buffer("trained", mask.unsqueeze(1), persistent=True)  # (n_items + 1, 1)

    def all(self) -> torch.Tensor:
        """Every row, padding included: (n_items + 1, dim)."""
        out = 0.0
        if self.ids is not None:
            out = self.ids.weight * self.trained
        if self.project is not None:
            text = self.project(self.text)
            text = torch.cat([torch.zeros_like(text[:1]), text[1:]])  # padding row stays zero
            out = out + text
        return out


class SASRecNet(nn.Module):
    """Causal self-attention over the item sequence (Kang & McAuley 2018), pre-norm blocks."""

    def __init__(self, items: ItemTable, dim: int, max_len: int, layers: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.items = items
        self.position = nn.Embedding(max_len, dim)
        nn.init.normal_(self.position.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=dim, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.scale = dim**0.5
        self.heads = heads

    def attention_mask(self, seq: torch.Tensor) -> torch.Tensor:
        """Float mask (B * heads, T, T): a position sees earlier real items and always itself.

        Letting a padded position attend to itself keeps every softmax row finite (an all-masked
        row would give NaN, which would then leak through the value products of later layers).
        """
        length = seq.shape[1]
        real_keys = (seq > 0).unsqueeze(1)  # (B, 1, T)
        causal = torch.ones(length, length, dtype=torch.bool).tril()  # (T, T)
        allowed = (causal & real_keys) | torch.eye(length, dtype=torch.bool)  # (B, T, T)
        mask = torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))
        return mask.repeat_interleave(self.heads, dim=0)  # (B * heads, T, T)

    def forward(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``seq`` (B, T) shifted item indices, 0 = padding; ``table`` from ``items.all()``. -> (B, T, D)."""
        _, length = seq.shape
        # right-aligned: the newest item always takes the last position, whatever the batch's padding,
        # so a history scores the same alone or in a batch with longer ones
        n_positions = self.position.num_embeddings
        positions = torch.arange(n_positions - length, n_positions, device=seq.device)
        x = table[seq] * self.scale + self.position(positions)  # (B, T, D)
        x = self.dropout(x) * (seq > 0).unsqueeze(-1)
        h = self.blocks(x, mask=self.attention_mask(seq))  # (B, T, D)
        return self.norm(h)


class GRUNet(nn.Module):
    """A GRU over the item sequence (GRU4Rec-style next-item model) with the same interface."""

    def __init__(self, items: ItemTable, dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.items = items
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.norm = nn.LayerNorm(dim)

    def forward(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        x = self.dropout(table[seq])  # (B, T, D); left padding rows are zero vectors
        h, _ = self.gru(x)  # (B, T, D)
        return self.norm(h)
