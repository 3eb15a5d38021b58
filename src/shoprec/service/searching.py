"""Product search per served model version: one :class:`~shoprec.search.hybrid.SearchEngine` each, built
when the version loads and kept in step with the catalog API.

- **Built at load.** The engine is built from the version's training snapshot
  (:func:`~shoprec.search.products.products_from_dataset`: table positions are the version's item
  indices), with dense retrieval over the version's ``item_vectors.npy`` when the service allows it
  (``search_dense``). Nothing of the engine is saved in the version folder: ``bm25s`` could save its
  matrix, but the lexical index's delta, document frequencies and the speller are only in memory, so
  every worker builds the engine when the version loads (the service is ready once the versions it
  starts with have theirs; a version loaded later builds it on the loader thread, and a search that
  comes first waits for that build).
- **The query encoder is the version's encoder**, loaded on the first query that needs it (shared with
  the catalog API's upserts, one instance per process): the item vectors are read at load, the model
  only when a query is encoded.
- **Catalog changes**: upserts and deletions through the API reach every worker's overlay
  (:class:`~shoprec.service.catalog.Catalog`); before each search the engine applies the overlay's
  changes it has not seen yet, so an upsert is searchable by the next request.
- **Request filters** (the feeds' category, exclude_category, min_price, max_price, in_stock, exclude)
  become a mask over table positions that the engine ANDs with the query's own constraints and never
  relaxes. A category no live product has is an :class:`UnknownFilterValue`.

Each version's engine has a readers-writer lock: searches share it (the query encoder and numpy run
without the GIL, so concurrent requests overlap), a batch of catalog changes takes it alone (an upsert
rebuilds the query parser and grows the table; a search must not read half of it), and a waiting
change goes before new searches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from shoprec.errors import ConfigError, ShoprecError
from shoprec.pipeline.filters import category_mask, price_mask
from shoprec.search.products import Product
from shoprec.service.served import Filters
from shoprec.service.store.base import ItemRecord
from shoprec.text.encoders import ENCODERS, Encoder

if TYPE_CHECKING:
    from shoprec.search.hybrid import SearchEngine, SearchResult
    from shoprec.search.suggest import Suggester, Suggestion
    from shoprec.service.versions import Deployed

log = logging.getLogger(__name__)


class CatalogChanges(Protocol):
    """What the engines read of :class:`~shoprec.service.catalog.Catalog` (which holds them; named here by
    its shape, not imported, so the two modules do not import each other)."""

    versions: object

    @property
    def overlay(self): ...

    def sync(self, force: bool = False, every: float = 1.0) -> None: ...

    def changed_since(self, seq: int) -> tuple[int, list[ItemRecord]]: ...


class UnknownFilterValue(ShoprecError):
    """A request filter names a value the catalogue does not have (answered as a 422 naming it)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class SharedEncoders:
    """Text encoders by name, loaded once per process: catalog upserts and search queries share them."""

    def __init__(self) -> None:
        self._loaded: dict[str, Encoder] = {}
        self._lock = threading.Lock()

    def get(self, name: str, sample_texts: Sequence[str] | None = None) -> Encoder:
        from shoprec.text.encoders import load_encoder

        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = load_encoder(name, sample_texts=sample_texts)
            return self._loaded[name]


def loadable(name: str) -> bool:
    """Whether an encoder name from a manifest can be loaded here (built-in, or an existing folder)."""
    return name in ENCODERS or Path(name).is_dir()


class LazyEncoder(Encoder):
    """The version's encoder, loaded from :class:`SharedEncoders` on the first text it encodes."""

    def __init__(self, name: str, dim: int, encoders: SharedEncoders) -> None:
        self.name, self.dim, self.encoders = name, int(dim), encoders
        self.cache_key = ("service-encoder", name, int(dim))  # every version with this encoder shares query vectors

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        real = self.encoders.get(self.name)
        if real.dim != self.dim:
            raise ShoprecError(
                f"encoder '{self.name}' makes {real.dim}-d vectors but the version's item vectors are {self.dim}-d"
            )
        return real.encode(texts, progress=False)


class SharedLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starves)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass
class VersionSearch:
    """One version's engine, the catalog changes it holds and what a filter needs beyond the table."""

    dep: Deployed
    engine: SearchEngine
    in_stock: np.ndarray
    query_counts: Counter
    seq: int = 0
    """The catalog overlay's change counter up to which changes are applied."""
    build_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    lock: SharedLock = field(default_factory=SharedLock)
    _suggester: Suggester | None = None

    @property
    def dense(self) -> bool:
        return self.engine.dense is not None

    def suggester(self) -> Suggester:
        """Past queries of the snapshot and the live titles (rebuilt after catalog changes)."""
        from shoprec.search.suggest import Suggester

        if self._suggester is None:
            table = self.engine.table
            titles = [p.title for p, alive in zip(table.products, table.alive, strict=True) if alive and p.title]
            self._suggester = Suggester(self.query_counts, titles)
        return self._suggester


def load_stages(ranker: str | None = None, cross_encoder: str | None = None) -> list:
    """Re-scoring stages from the service settings: the learned ranker (best 100), then the
    cross-encoder (best 20); a missing or broken folder stops the service at start with its error."""
    stages = []
    for path, label in ((ranker, "search_ranker"), (cross_encoder, "search_cross_encoder")):
        if path and not Path(path).exists():
            raise ShoprecError(f"{label}: no such file or folder {path!r}")
    if ranker:
        from shoprec.search.ranker import RankerStage

        stages.append(RankerStage(ranker))
    if cross_encoder:
        from shoprec.search.crossencoder import CrossEncoderStage

        stages.append(CrossEncoderStage(cross_encoder))
    return stages


def build_search(
    dep: Deployed, encoders: SharedEncoders | None = None, dense: bool = True, stages: Sequence = (), merch=None
) -> VersionSearch:
    """The search engine of a loaded version (dense retrieval when ``dense`` and the encoder is loadable;
    ``stages`` re-score the fused order; ``merch``: a :class:`~shoprec.search.merch.Merchandising`, checked
    against the version's catalogue; popularity, for queries that hold only constraints, is the number of
    shoppers of each item in the version's snapshot)."""
    from shoprec.search.dense import DenseIndex
    from shoprec.search.hybrid import SearchEngine, shoppers_per_item
    from shoprec.search.products import ProductTable, products_from_dataset

    began = time.perf_counter()
    table = ProductTable(products_from_dataset(dep.dataset))
    notes = []
    index = None
    name = str(dep.manifest.get("encoder", ""))
    vectors = dep.item_vectors
    if dense and loadable(name) and vectors.ndim == 2 and len(vectors) == len(table):
        index = DenseIndex(LazyEncoder(name, vectors.shape[1], encoders or SharedEncoders()), vectors, table.alive)
    elif dense:
        notes.append(f"dense retrieval off: encoder {name!r} cannot be loaded here or the item vectors do not fit")
    engine = SearchEngine(table, dense=index, stages=stages, popularity=shoppers_per_item(dep.dataset), merch=merch)
    for warning in engine.merch_warnings:
        log.warning("search merchandising on %s: %s", dep.version, warning)
    in_stock = np.asarray(dep.info.in_stock, dtype=bool).copy()
    queries = dep.dataset.queries
    counts = Counter(str(q) for q in queries["query"].dropna()) if queries is not None else Counter()
    seconds = time.perf_counter() - began
    return VersionSearch(dep, engine, in_stock, counts, build_seconds=seconds, notes=notes)


def product_of(record: ItemRecord) -> Product:
    """What search reads of an item added or changed through the API."""
    price = float("nan") if record.price is None else float(record.price)
    return Product(record.item_id, record.title, record.description, record.category, record.brand, price)


class Searching:
    """The engines of the loaded versions over one catalog (see the module docstring)."""

    def __init__(
        self,
        catalog: CatalogChanges,
        dense: bool = True,
        encoders: SharedEncoders | None = None,
        stages: Sequence = (),
        merch=None,
    ) -> None:
        self.catalog, self.dense, self.stages, self.merch = catalog, dense, list(stages), merch
        self.encoders = encoders or SharedEncoders()
        self.strict = True
        """A merchandising file that does not fit a version stops the build (at start); once the service
        serves (:meth:`serving`), that version searches without merchandising and says so."""
        self._built: dict[str, VersionSearch] = {}
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ engines
    def prepare(self, dep: Deployed) -> VersionSearch:
        """The version's engine, built now if it is not yet (one build per version, others wait)."""
        found = self._built.get(dep.version)
        if found is not None and found.dep is dep:
            return found
        with self._lock:
            building = self._building.setdefault(dep.version, threading.Lock())
        with building:
            found = self._built.get(dep.version)
            if found is not None and found.dep is dep:
                return found
            built = self._build(dep)
            self._share_encoder(dep)
            log.info(
                "search engine of %s built in %.2f s (%d items)",
                dep.version,
                built.build_seconds,
                len(built.engine.table),
            )
            with self._lock:
                loaded = set(self.catalog.versions.loaded) | {dep.version}
                self._built = {v: s for v, s in self._built.items() if v in loaded}
                self._built[dep.version] = built
            return built

    def _share_encoder(self, dep: Deployed) -> None:
        """Give the version's pipeline the query encoder (its "queries" recall source encodes the
        shopper's recent searches with it), loaded on first use, the instance search uses."""
        name, vectors = str(dep.manifest.get("encoder", "")), dep.item_vectors
        resources = dep.pipeline.resources
        if getattr(resources, "encoder", None) is None and loadable(name) and vectors.ndim == 2:
            resources.encoder = LazyEncoder(name, vectors.shape[1], self.encoders)

    def serving(self) -> None:
        """From now on a version the merchandising does not fit is served without it (see ``strict``)."""
        self.strict = False

    def _build(self, dep: Deployed) -> VersionSearch:
        try:
            return build_search(dep, self.encoders, self.dense, self.stages, self.merch)
        except ConfigError as err:
            if self.merch is None or self.strict:
                raise
            log.error("search merchandising does not fit %s, searching without it: %s", dep.version, err)
            built = build_search(dep, self.encoders, self.dense, self.stages)
            built.notes.append(f"merchandising is off for version {dep.version}: {err}")
            return built

    def current(self, dep: Deployed) -> VersionSearch:
        """The version's engine with every catalog change made so far (by any worker) applied."""
        self.catalog.sync()
        vs = self.prepare(dep)
        if self.catalog.overlay.seq > vs.seq:
            with vs.lock.writing():
                if self.catalog.overlay.seq > vs.seq:  # another request may have applied them meanwhile
                    self._apply(vs)
        return vs

    def _apply(self, vs: VersionSearch) -> None:
        seq, records = self.catalog.changed_since(vs.seq)
        table = vs.engine.table
        gone = [r.item_id for r in records if r.deleted and table.position(r.item_id) >= 0]
        fresh = [r for r in records if not r.deleted]
        if fresh:
            vs.engine.upsert([product_of(r) for r in fresh])
            grow = len(table) - len(vs.in_stock)
            vs.in_stock = np.concatenate([vs.in_stock, np.ones(max(grow, 0), dtype=bool)])
            for record in fresh:
                vs.in_stock[table.position(record.item_id)] = record.attributes.get("in_stock", True) is not False
        if gone:
            vs.engine.remove(gone)
        if fresh or gone:
            vs._suggester = None
        vs.seq = max(vs.seq, seq)

    # ------------------------------------------------------------------ answers
    def search(
        self,
        dep: Deployed,
        query: str,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        profile=None,
    ) -> tuple[SearchResult, VersionSearch]:
        """One search on ``dep``'s engine; ``profile`` is a callable ``(VersionSearch) -> SearchProfile | None``
        run under the engine's read lock (the profile reads the table)."""
        vs = self.current(dep)
        with vs.lock.reading():
            allowed = request_mask(vs, filters) if filters is not None and filters.active else None
            shopper = profile(vs) if profile is not None else None
            return vs.engine.search(query, k=k, offset=offset, profile=shopper, allowed=allowed), vs

    def suggest(self, dep: Deployed, prefix: str, k: int = 10) -> list[Suggestion]:
        vs = self.current(dep)
        with vs.lock.reading():
            return vs.suggester().complete(prefix, k)


def request_mask(vs: VersionSearch, filters: Filters) -> np.ndarray:
    """Table positions that pass a request's filters; a category no live product has is an error."""
    table = vs.engine.table
    alive = table.alive
    for parameter, paths in (("category", filters.categories), ("exclude_category", filters.exclude_categories)):
        for path in paths:
            if not (category_mask(table.category, [path]) & alive).any():
                raise UnknownFilterValue(
                    parameter,
                    f"unknown {parameter} {path!r}: no product in the catalogue is under it; "
                    f"top-level categories: {', '.join(top_categories(vs)[:12])}",
                )
    if filters.min_price is not None and filters.max_price is not None and filters.min_price > filters.max_price:
        raise UnknownFilterValue(
            "min_price", f"min_price {filters.min_price:g} is above max_price {filters.max_price:g}"
        )
    mask = alive.copy()
    if filters.categories:
        mask &= category_mask(table.category, filters.categories)
    if filters.exclude_categories:
        mask &= ~category_mask(table.category, filters.exclude_categories)
    if filters.min_price is not None or filters.max_price is not None:
        mask &= ~price_mask(table.price, filters.min_price, filters.max_price, keep_unknown=False)
    if filters.in_stock:
        mask &= vs.in_stock[: len(mask)]
    for item_id in filters.exclude_items:
        position = table.position(item_id)
        if position >= 0:
            mask[position] = False
    return mask


def top_categories(vs: VersionSearch) -> list[str]:
    """The first levels of the live products' category paths, most products first."""
    table = vs.engine.table
    counts = Counter(str(c).split(">")[0].strip() for c in table.category[table.alive] if c and str(c).strip())
    return [name for name, _ in counts.most_common()]
