"""Item vectors, with an on-disk cache keyed by content so that only new or changed texts are encoded.

A :class:`VectorCache` lives in ``<cache_dir>/<encoder name>/`` as two files, neither of them a
pickle:

- ``vectors.npy``: float32, shape (rows, dim), unit-length rows as the encoder returned them;
- ``keys.parquet``: columns ``key`` (sha256 hex of encoder name + text) and ``row`` (into
  ``vectors.npy``), with the encoder name, dim, row count and the sha256 of ``vectors.npy`` in the
  Parquet schema metadata.

Both files are written to temporary names and moved into place (``keys.parquet`` last, so it is the
commit point); the recorded checksum catches a pair torn by a crash or by two writers at once. A
cache that cannot be read, fails its checksum or holds vectors of another dimension is rebuilt with
a warning, never trusted. Encoders loaded from a model folder (fine-tuned ones) add a fingerprint of
their weight files (names, sizes, modification times) to the key, so re-training invalidates the
cache. The cache keeps the vectors of the latest call plus at most as many older entries (so it
stays under twice the catalogue while switching back to an old text is still free).

>>> vectors = item_vectors(dataset, load_encoder("minilm-int8"), cache_dir="cache")   # doctest: +SKIP
>>> vectors.shape                                                                     # doctest: +SKIP
(3000, 384)
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.text.encoders import ENCODERS, Encoder
from shoprec.text.itemtext import ItemTexts, item_texts

log = logging.getLogger(__name__)

META_KEY = b"shoprec.vector_cache"
FORMAT_VERSION = 1
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".json", ".txt", ".model")
"""Files of a model folder whose names, sizes and modification times make its fingerprint."""


class CacheProblem(Exception):
    """Internal: the cache on disk cannot be used (reported as a warning, then rebuilt)."""


def encoder_version(encoder: Encoder) -> str:
    """``""`` for built-in encoders; for model folders a short fingerprint of the weight files."""
    path = getattr(encoder, "path", None)
    if encoder.name in ENCODERS or path is None or not Path(path).is_dir():
        return ""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and move it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class VectorCache:
    """Content-addressed store of text vectors for one encoder: ``folder/<encoder_name>/``.

    ``last_stats`` describes the latest :meth:`encode`: ``texts``, ``unique`` (distinct texts),
    ``hits`` and ``misses`` (distinct texts found / encoded), ``rebuilt`` (1 when the files on disk
    were unusable) and ``stored`` (rows now in the cache).
    """

    def __init__(self, folder: str | Path, encoder_name: str, version: str = "") -> None:
        self.root = Path(folder)
        self.encoder_name = encoder_name
        self.version = version
        self.folder = self.root / (re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name).strip("._") or "encoder")
        self.last_stats: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"VectorCache({str(self.folder)!r})"

    @property
    def vectors_path(self) -> Path:
        return self.folder / "vectors.npy"

    @property
    def keys_path(self) -> Path:
        return self.folder / "keys.parquet"

    def key(self, text: str) -> str:
        """sha256 hex of encoder name (+ version) and text: the text's address in the cache."""
        return hashlib.sha256(f"{self.encoder_name}\x1f{self.version}\x1f{text}".encode()).hexdigest()

    def load(self, dim: int) -> tuple[dict[str, int], np.ndarray]:
        """``(key -> row, vectors)``; empty when there is no cache yet; raises CacheProblem when unusable."""
        if not self.keys_path.exists():
            return {}, np.zeros((0, dim), dtype=np.float32)
        try:
            table = pq.read_table(self.keys_path)
            meta = json.loads((table.schema.metadata or {})[META_KEY])
            data = self.vectors_path.read_bytes()
            vectors = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, KeyError, EOFError, pa.ArrowException) as err:
            raise CacheProblem(f"cannot be read ({type(err).__name__}: {err})") from None
        if meta.get("format") != FORMAT_VERSION or meta.get("encoder") != self.encoder_name:
            raise CacheProblem(f"was written for another format or encoder ({meta.get('encoder')!r})")
        if hashlib.sha256(data).hexdigest() != meta.get("vectors_sha256"):
            raise CacheProblem("vectors.npy does not match keys.parquet (checksum differs: torn or edited)")
        if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != dim:
            raise CacheProblem(f"holds {vectors.dtype} vectors of shape {vectors.shape}, the encoder gives dim {dim}")
        keys = table.column("key").to_pylist()
        rows = np.asarray(table.column("row").to_numpy(), dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(vectors) or len(set(keys)) != len(keys)):
            raise CacheProblem("keys.parquet points outside vectors.npy or repeats a key")
        return dict(zip(keys, rows.tolist(), strict=True)), vectors

    def save(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Replace the cache with ``keys[i] -> vectors[i]`` (atomic per file, keys last)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        buffer = io.BytesIO()
        np.save(buffer, vectors, allow_pickle=False)
        data = buffer.getvalue()
        meta = {
            "format": FORMAT_VERSION,
            "encoder": self.encoder_name,
            "version": self.version,
            "rows": len(vectors),
            "dim": int(vectors.shape[1]),
            "vectors_sha256": hashlib.sha256(data).hexdigest(),
        }
        table = pa.table({"key": pa.array(list(keys), pa.string()), "row": pa.array(np.arange(len(keys)), pa.int64())})
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        _write_atomic(self.vectors_path, data)
        _write_atomic(self.keys_path, sink.getvalue().to_pybytes())

    def _load_or_warn(self, dim: int) -> tuple[dict[str, int], np.ndarray, bool]:
        try:
            index, stored = self.load(dim)
            return index, stored, False
        except CacheProblem as problem:
            warnings.warn(
                f"vector cache {self.folder} {problem}; rebuilding it (every text is encoded again)",
                RuntimeWarning,
                stacklevel=3,
            )
            return {}, np.zeros((0, dim), dtype=np.float32), True

    def encode(
        self, texts: Sequence[str], encoder: Encoder, batch_size: int = 64, progress: bool | None = None
    ) -> np.ndarray:
        """Vectors of ``texts`` (n, dim) float32: cached rows where the key is known, the rest encoded."""
        if encoder.name != self.encoder_name:
            raise ShoprecError(
                f"vector cache {self.folder} belongs to encoder '{self.encoder_name}' but was given "
                f"'{encoder.name}'. Use one cache per encoder: VectorCache(folder, encoder.name)"
            )
        texts = [str(t) for t in texts]
        unique = list(dict.fromkeys(texts))
        keys = [self.key(t) for t in unique]
        index, stored, rebuilt = self._load_or_warn(encoder.dim)
        found = np.array([k in index for k in keys], dtype=bool)
        out = np.zeros((len(unique), encoder.dim), dtype=np.float32)  # (U, dim) one row per distinct text
        if found.any():
            out[found] = stored[[index[k] for k, f in zip(keys, found, strict=True) if f]]
        missing = np.flatnonzero(~found)
        if len(missing):
            out[missing] = encoder.encode([unique[i] for i in missing], batch_size=batch_size, progress=progress)
        current = set(keys)
        stale = [k for k in index if k not in current][: len(keys)]
        if len(missing) or rebuilt or len(index) - (len(keys) - len(missing)) > len(stale):
            rows = [index[k] for k in stale]
            self.save(keys + stale, np.concatenate([out, stored[rows]]) if rows else out)
        self.last_stats = {
            "texts": len(texts),
            "unique": len(unique),
            "hits": int(found.sum()),
            "misses": len(missing),
            "rebuilt": int(rebuilt),
            "stored": len(keys) + len(stale),
        }
        log.info("vector cache %s: %s", self.folder, self.last_stats)
        position = {t: i for i, t in enumerate(unique)}
        return out[[position[t] for t in texts]]


def item_vectors(
    dataset: Dataset,
    encoder: Encoder,
    cache_dir: str | Path | VectorCache | None = None,
    progress: bool | None = None,
    batch_size: int = 64,
    texts: ItemTexts | Sequence[str] | None = None,
) -> np.ndarray:
    """(n_items, dim) float32 unit vectors of the items' texts (:func:`item_texts` unless given).

    With ``cache_dir`` (a folder, or a :class:`VectorCache` whose ``last_stats`` you want to read)
    only texts not seen before by this encoder are encoded; without it every text is encoded.

    >>> enc = load_encoder("minilm-int8")                                   # doctest: +SKIP
    >>> item_vectors(dataset, enc, cache_dir=".shoprec/vectors").shape      # doctest: +SKIP
    (3000, 384)
    """
    if texts is None:
        texts = item_texts(dataset)
    values = texts.texts if isinstance(texts, ItemTexts) else list(texts)
    if len(values) != dataset.n_items:
        raise ShoprecError(f"got {len(values)} item texts for {dataset.n_items} items: give one text per item index")
    if cache_dir is None:
        return encoder.encode(values, batch_size=batch_size, progress=progress)
    cache = cache_dir if isinstance(cache_dir, VectorCache) else None
    if cache is None:
        cache = VectorCache(cache_dir, encoder.name, version=encoder_version(encoder))
    return cache.encode(values, encoder, batch_size=batch_size, progress=progress)
