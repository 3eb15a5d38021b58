"""Search speed at 100k and 1M synthetic products: index build time and memory, query latency, upsert cost.

    .venv/bin/python benchmarks/search_speed.py build --items 100000 --index lexical
    .venv/bin/python benchmarks/search_speed.py latency --items 100000 --encoder use-multilingual --cross standin
    .venv/bin/python benchmarks/search_speed.py all --out benchmarks/results/search-speed   # every row (about an hour)

The catalogue is synthetic and seeded: the demo shop's 41 leaf categories with their English and
Chinese nouns, materials and features; 3,000 invented brands (Zipf popularity); model codes; prices
log-normal around each leaf's median; descriptions of 15-40 words drawn (Zipf) from the ~20,000
whole English words of MiniLM's WordPiece vocabulary, or from the 3,000 most frequent two-character
words of jieba's dictionary for the 20 % of products written in Chinese.

Item vectors: at 1M products the dense index holds random unit vectors of the encoder's dimension
(encoding 1M titles would take hours on this 2-core machine); at 100k the same unless ``--real``
(the titles encoded for real: about 10 minutes with ``use-multilingual``). HNSW search cost depends
on the graph, not on what the vectors mean, but random vectors are a harder case than real ones
(no clusters): latency with them is, if anything, pessimistic.

Latency is measured on one core (run the script under ``taskset -c 1``; torch, faiss, onnxruntime and
BLAS are set to one thread here) through ``SearchEngine.search`` end to end: parsing with spelling
correction, constraints, lexical and dense retrieval with the query encoded, fusion. ``--cross``
adds a cross-encoder over the top 20: ``standin`` is all six layers of the packaged all-MiniLM-L6-v2
with a fresh one-output linear head (``AutoModelForSequenceClassification``, seeded): the same
architecture and cost as a cross-encoder fine-tuned from it; a folder path uses
``shoprec.search.crossencoder.CrossEncoderStage`` with that model.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
    os.environ.setdefault(_var, "1" if _var != "TOKENIZERS_PARALLELISM" else "false")

import numpy as np  # noqa: E402

from shoprec.data.demo.words import ADJECTIVES, COLOURS, LEAVES  # noqa: E402
from shoprec.search.products import Product  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SYLLABLES = ("ka", "lo", "mi", "ze", "tor", "van", "sel", "rin", "dal", "quo") + (
    "pex",
    "nor",
    "fin",
    "gal",
    "bru",
    "tek",
    "sol",
    "mar",
    "vin",
    "lux",
)
ZH_SHARE = 0.2


# ---------------------------------------------------------------------------------------- catalogue
def _vocabularies() -> tuple[list[str], list[str]]:
    """~20k whole English words (MiniLM's WordPiece vocabulary, roughly by frequency) and 3k Chinese words."""
    import jieba

    from shoprec.text.encoders import minilm_folder

    vocab = (minilm_folder() / "vocab.txt").read_text(encoding="utf-8").split("\n")
    english = [w for w in vocab if w.isalpha() and w.isascii() and len(w) >= 4]
    rows = [
        line.split() for line in (Path(jieba.__file__).parent / "dict.txt").read_text(encoding="utf-8").splitlines()
    ]
    chinese = [r[0] for r in rows if len(r) == 3 and len(r[0]) == 2 and r[2] in ("n", "v", "a", "vn")]
    freq = {r[0]: int(r[1]) for r in rows if len(r) == 3}
    chinese.sort(key=lambda w: -freq[w])
    return english, chinese[:3000]


def _zipf(rng: np.random.Generator, n_choices: int, size: int | tuple[int, ...], s: float = 1.05) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_choices + 1) ** s
    return rng.choice(n_choices, size=size, p=weights / weights.sum())


def _brands(rng: np.random.Generator, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        parts = rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))
        names.add(
            "".join(parts).capitalize()
            + (" " + rng.choice(["Co", "Works", "Home", "Pro"]) if rng.random() < 0.15 else "")
        )
    return sorted(names)


def catalogue(n: int, seed: int = 0) -> list[Product]:
    """``n`` synthetic products (module docstring); the same ``n`` and ``seed`` give the same products."""
    rng = np.random.default_rng(seed)
    english, chinese = _vocabularies()
    brands = _brands(rng, 3000)
    rng.shuffle(brands)
    leaf = _zipf(rng, len(LEAVES), n, s=0.6).tolist()
    brand = _zipf(rng, len(brands), n, s=0.9).tolist()
    zh = (rng.random(n) < ZH_SHARE).tolist()
    slots = rng.integers(0, 4, size=(n, 5)).tolist()  # noun, material, feature, feature2, template
    adj, colour = rng.integers(0, 6, n).tolist(), rng.integers(0, 10, n).tolist()
    price = np.round(np.exp(rng.normal(0, 0.5, n)) * np.array([lf.price for lf in LEAVES])[leaf], 2).tolist()
    n_desc = rng.integers(15, 41, n)
    ends = np.cumsum(n_desc).tolist()
    desc_en = np.array(english, dtype=object)[_zipf(rng, len(english), int(n_desc.sum()))].tolist()
    desc_zh = np.array(chinese, dtype=object)[_zipf(rng, len(chinese), int(n_desc.sum()), s=0.9)].tolist()
    codes = rng.integers(100, 10000, n).tolist()
    products = []
    for i, (lf_i, b_i, is_zh, (s0, s1, s2, s3, s4)) in enumerate(zip(leaf, brand, zh, slots, strict=True)):
        lf, b = LEAVES[lf_i], brands[b_i]
        words = lf.zh if is_zh else lf.en
        noun, material, feature, feature2 = words.nouns[s0], words.materials[s1], words.features[s2], words.features[s3]
        adjective = ADJECTIVES[lf.top][int(is_zh)][adj[i]]
        col = COLOURS[int(is_zh)][colour[i]] if lf.coloured else ""
        code = f"{b[:2].upper()}-{codes[i]}"
        start, end = ends[i] - int(n_desc[i]), ends[i]
        if is_zh:
            title = f"{b} {adjective}{col}{material}{noun} {feature} {code}"
            desc = "".join(desc_zh[start:end]) + f"。{feature}，{feature2}。"
        elif s4 < 2:
            title = f"{b} {adjective} {col} {material} {noun} {code} - {feature}"
            desc = " ".join(desc_en[start:end]) + f". {feature}, {feature2}."
        else:
            title = f"{adjective} {material} {noun} by {b} ({feature}, {feature2})"
            desc = " ".join(desc_en[start:end]) + f". Model {code}."
        products.append(Product(f"S{i}", " ".join(title.split()), desc, lf.path, b, price[i], f"{feature}, {feature2}"))
    return products


def _typo(word: str, rng: np.random.Generator) -> str:
    """One edit in a word of 5+ letters: a swap of neighbours, a dropped or a doubled letter."""
    if len(word) < 5 or not word.isalpha():
        return word
    i = int(rng.integers(1, len(word) - 2))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i + 1 :] if kind == 1 else word[:i] + word[i] + word[i:]


def query_mix(products: list[Product], n: int, seed: int = 1) -> list[tuple[str, str]]:
    """``n`` (kind, query) pairs drawn from the products: 1-4 words of a title, some with a price bound or
    the brand, some with a misspelt word, Chinese for Chinese products."""
    rng = np.random.default_rng(seed)
    out = []
    for idx in rng.integers(0, len(products), n):
        p = products[idx]
        zh = bool(re.search(r"[\u4e00-\u9fff]", p.title))
        if zh:  # Chinese titles have no spaces inside the name: its material and noun are the words
            leaf = next(lf for lf in LEAVES if lf.path == p.category)
            found = [
                max((w for w in kind if w in p.title), key=len, default="")
                for kind in (leaf.zh.materials, leaf.zh.nouns)
            ]
            words = [w for w in found if w]
        else:
            skip = {w.lower() for w in p.brand.split()} | {"by"}
            words = re.findall(r"[^\W_]+", p.title.split(" - ")[0].split(" (")[0])
            words = [w for w in words if w.lower() not in skip and not re.fullmatch(r"[A-Z]{2}|\d+", w)]
        size = int(min(len(words), rng.choice([1, 2, 2, 3, 3, 4])))
        start = int(rng.integers(0, len(words) - size + 1))
        q = [w.lower() for w in words[start : start + size]]
        kind = "plain"
        r = rng.random()
        if r < 0.2:
            bound = int(np.ceil(p.price * rng.uniform(1.0, 2.0)))
            q.append(f"{bound}元以下" if zh else rng.choice([f"under {bound}", f"between {bound // 3} and {bound}"]))
            kind = "price"
        elif r < 0.35:
            q.insert(0, p.brand.lower())
            kind = "brand"
        elif r < 0.47 and not zh:
            j = int(np.argmax([len(w) for w in q]))
            q[j] = _typo(q[j], rng)
            kind = "typo"
        out.append(("zh-" + kind if zh else kind, " ".join(q)))
    return out


# ---------------------------------------------------------------------------------------- measuring
class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled every 10 ms (MiB over the start)."""

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end = _rss_mib()
        self.peak = max(self.peak, self.end)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(fn: Callable[[], object]) -> tuple[object, dict[str, float]]:
    """Run ``fn``; its wall and CPU seconds, and memory: peak and retained MiB over the start."""
    import gc

    gc.collect()
    with PeakRSS() as mem:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gc.collect()
    retained = _rss_mib() - mem.start
    return out, {
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_mib": round(mem.peak - mem.start, 1),
        "retained_mib": round(retained, 1),
    }


def machine() -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    affinity = sorted(os.sched_getaffinity(0))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "affinity": affinity,
        "python": platform.python_version(),
        "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
    }


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def commit() -> str:
    run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src/shoprec/search", "benchmarks/search_speed.py"],
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout.strip()
    return run.stdout.strip() + ("+local changes" if dirty else "")


def one_thread() -> None:
    """torch, faiss and onnxruntime (through the env vars set at import) on one thread each."""
    import faiss
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)


def percentiles(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms)
    return {
        "n": len(arr),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p90_ms": round(float(np.percentile(arr, 90)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "mean_ms": round(float(arr.mean()), 2),
    }


# ---------------------------------------------------------------------------------------- the engine
def query_encoder(name: str):  # noqa: ANN201 (an Encoder)
    from shoprec.text.encoders import MultilingualUSEEncoder, OnnxMiniLMEncoder, SentenceTransformerEncoder

    makers = {
        "use-multilingual": lambda: MultilingualUSEEncoder(threads=1),
        "minilm-int8": lambda: OnnxMiniLMEncoder(threads=1),
        "minilm": lambda: SentenceTransformerEncoder(name="minilm", threads=1),
    }
    if name not in makers:
        raise SystemExit(f"--encoder must be one of {', '.join(makers)}, got '{name}'")
    return makers[name]()


def random_unit_vectors(n: int, dim: int, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for lo in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - lo), dim), dtype=np.float32)
        out[lo : lo + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def item_vectors(products: list[Product], encoder, real: bool) -> np.ndarray:  # noqa: ANN001
    if not real:
        return random_unit_vectors(len(products), encoder.dim)
    from shoprec.search.dense import product_text

    return encoder.encode([product_text(p) for p in products], batch_size=128, progress=True)


class StageTimer:
    """Wraps methods of the engine's parts to add up the time spent in each stage of one search."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.wrapped: list[tuple[object, str, Callable]] = []

    def wrap(self, owner: object, method: str, stage: str) -> None:
        inner = getattr(owner, method)

        def timed_call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - start

        setattr(owner, method, timed_call)
        self.wrapped.append((owner, method, inner))

    def unwrap(self) -> None:
        for owner, method, inner in reversed(self.wrapped):
            if isinstance(owner, type) or hasattr(owner, "__file__"):
                setattr(owner, method, inner)  # a module function
            else:
                delattr(owner, method)  # an instance attribute over the class's method
        self.wrapped = []

    def take(self) -> dict[str, float]:
        out, self.spent = {k: v * 1000 for k, v in self.spent.items()}, {}
        return out


def instrument(engine) -> StageTimer:  # noqa: ANN001
    timer = StageTimer()
    timer.wrap(engine.parser, "parse", "parse")
    timer.wrap(engine.speller, "correct_text", "spelling")
    timer.wrap(engine.lexical, "search", "lexical")
    if engine.dense is not None:
        timer.wrap(engine.dense, "encode_query", "encode")
        timer.wrap(engine.dense, "search", "dense")
    for stage in engine.stages:
        timer.wrap(stage, "score", "cross")
    timer.wrap(engine, "_order", "order+stages")
    import shoprec.search.facets

    timer.wrap(shoprec.search.facets, "facets", "facets")
    return timer


# ---------------------------------------------------------------------------------------- cross-encoder
def standin_cross_encoder(folder: Path, layers: int, max_length: int = 48) -> Path:
    """A cross-encoder folder as ``shoprec.search.crossencoder`` trains one, untrained: the first ``layers``
    of the packaged all-MiniLM-L6-v2 under a fresh one-output head (seeded). Same architecture and cost."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from shoprec.text.encoders import minilm_folder

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm_folder()), num_labels=1)
    model.bert.encoder.layer = model.bert.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_folder())).save_pretrained(folder)
    settings = {"layers": layers, "max_length": max_length, "note": "untrained stand-in for timing"}
    (folder / "crossencoder.json").write_text(json.dumps({"settings": settings}))
    return folder


# ---------------------------------------------------------------------------------------- runs
def run_build(args: argparse.Namespace) -> dict:
    from shoprec.search.dense import DenseIndex
    from shoprec.search.lexical import LexicalIndex
    from shoprec.search.products import ProductTable
    from shoprec.search.query import QueryParser
    from shoprec.search.spelling import SpellCorrector

    products, made = timed(lambda: catalogue(args.items, args.seed))
    table = ProductTable(products)
    row: dict = {"run": "build", "items": args.items, "index": args.index, "catalogue": made}
    if args.index == "lexical":
        _, row["build"] = timed(lambda: LexicalIndex().build(table))
    elif args.index == "query":  # the engine's other parts: spelling vocabulary and query parser
        _, row["build"] = timed(
            lambda: (SpellCorrector.from_products(table.products), QueryParser.from_products(table))
        )
    else:
        encoder = query_encoder(args.encoder)
        vectors, row["vectors"] = timed(lambda: item_vectors(products, encoder, args.real))
        row.update(encoder=encoder.name, dim=encoder.dim, real_vectors=args.real)
        import faiss

        faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))  # the HNSW build on every core it may use
        row["faiss_threads"] = faiss.omp_get_max_threads()
        index, row["build"] = timed(lambda: DenseIndex(encoder, vectors, table.alive))
        row["faiss_kind"] = index.index.kind
    return row


def make_engine(args: argparse.Namespace, products: list[Product], stages: tuple = ()):  # noqa: ANN201
    from shoprec.search.dense import DenseIndex
    from shoprec.search.hybrid import SearchEngine
    from shoprec.search.products import ProductTable

    table = ProductTable(products)
    encoder = query_encoder(args.encoder)
    dense = DenseIndex(encoder, item_vectors(products, encoder, args.real), table.alive)
    return SearchEngine(table, dense=dense, stages=stages)


def cross_stage(spec: str, queries: int) -> tuple[tuple, str, int]:
    """A cross-encoder variant to time: ``none``, ``standin:LAYERS`` or a trained model folder;
    returns (stages, what it is, queries to time: 30 % of them with a two-layer stand-in, 10 % with six)."""
    import tempfile

    from shoprec.search.crossencoder import CrossEncoderStage

    if spec == "none":
        return (), "none", queries
    parts = spec.split(":")  # standin:LAYERS[:int8][:MAX_LENGTH] or FOLDER[:int8][:MAX_LENGTH]
    int8 = "int8" in parts
    length = next((int(p) for p in parts[2 if parts[0] == "standin" else 1 :] if p.isdigit()), None)
    if parts[0] == "standin":
        layers = int(parts[1]) if len(parts) > 1 else 2
        folder = standin_cross_encoder(Path(tempfile.mkdtemp(prefix="cross-standin-")), layers)
        what, n = f"untrained stand-in: all-MiniLM-L6-v2 layers 1-{layers} + fresh head", queries * 3 // 10
        n = n if layers <= 2 else queries // 10
    else:
        folder, what, n = Path(parts[0]), f"trained: {parts[0]}", queries * 3 // 10
    stage = CrossEncoderStage(folder, top=20, threads=1)
    if int8:
        import torch

        stage.model.model = torch.ao.quantization.quantize_dynamic(stage.model.model, {torch.nn.Linear}, torch.qint8)
    stage.model.max_length = length or stage.model.max_length
    what += f", max_length {stage.model.max_length}" + (", int8 (dynamic, linear layers)" if int8 else ", fp32")
    return (stage,), what, max(50, n)


def run_serve(args: argparse.Namespace) -> list[dict]:
    """One engine at ``--items``; query latency for each ``--cross`` variant; then upserts (``--upserts``)."""
    one_thread()
    products = catalogue(args.items, args.seed)
    engine, built = timed(lambda: make_engine(args, products))
    rows = []
    for spec in args.cross.split(","):
        engine.stages, what, n = cross_stage(spec, args.queries)
        rows.append({**latency(engine, products, args.seed, n), "cross": what, "engine_build": built})
    if args.upserts:
        rows.append(run_upsert(args, engine, products))
    return rows


def latency(engine, products: list[Product], seed: int, n_queries: int) -> dict:  # noqa: ANN001
    """Wall and CPU (this thread) milliseconds per ``SearchEngine.search`` over the query mix."""
    queries = query_mix(products, n_queries + 20, seed=seed + 1)
    timer = instrument(engine)
    times, cpu, spent, kinds = [], [], [], []
    for n, (kind, text) in enumerate(queries):
        start, start_cpu = time.perf_counter(), time.thread_time()
        engine.search(text, k=10)
        elapsed, elapsed_cpu = (time.perf_counter() - start) * 1000, (time.thread_time() - start_cpu) * 1000
        stage_ms = timer.take()
        if n >= 20:  # the first 20 warm up caches and lazy imports
            times.append(elapsed)
            cpu.append(elapsed_cpu)
            spent.append(stage_ms)
            kinds.append(kind)
    timer.unwrap()
    per_stage = {s: percentiles([st.get(s, 0.0) for st in spent]) for s in sorted({s for st in spent for s in st})}
    per_kind = {kd: percentiles([t for t, x in zip(times, kinds, strict=True) if x == kd]) for kd in sorted(set(kinds))}
    return {
        "run": "latency",
        "items": len(products),
        "encoder": engine.dense.encoder.name,
        "k": 10,
        "latency": percentiles(times),
        "cpu": percentiles(cpu),
        "stages": per_stage,
        "kinds": per_kind,
        "examples": [q for _, q in queries[20:40]],
    }


def run_upsert(args: argparse.Namespace, engine, products: list[Product]) -> dict:  # noqa: ANN001
    """Single-product upserts (half new, half replacing a product) each followed by a search for a word only
    it has; then one batch past the compaction threshold, searches during the background rebuild."""
    from dataclasses import replace

    engine.stages = []
    timer = StageTimer()
    timer.wrap(engine.lexical, "upsert", "lexical")
    timer.wrap(engine.dense, "upsert", "dense (encode + index)")
    timer.wrap(engine.speller, "add", "spelling")
    rng = np.random.default_rng(args.seed + 3)
    upserts, searches, found, parts = [], [], 0, []
    for i, p in enumerate(catalogue(args.upserts, seed=args.seed + 7)):
        item_id = f"N{i}" if i % 2 == 0 else products[int(rng.integers(len(products)))].item_id
        new = replace(p, item_id=item_id, title=f"{p.title} Qzx{i}")
        start = time.perf_counter()
        engine.upsert([new])
        upserts.append((time.perf_counter() - start) * 1000)
        parts.append(timer.take())
        start = time.perf_counter()
        hits = engine.search(f"qzx{i}", k=3).hits
        searches.append((time.perf_counter() - start) * 1000)
        found += item_id in [h.item_id for h in hits]  # a lone word: lexical rank 1 (ties with dense rank 1)
    timer.unwrap()
    per_part = {s: percentiles([pt.get(s, 0.0) for pt in parts]) for s in sorted({s for pt in parts for s in pt})}
    return {
        "run": "upsert",
        "items": args.items,
        "encoder": engine.dense.encoder.name,
        "upsert": percentiles(upserts),
        "upsert_parts": per_part,
        "next_search": percentiles(searches),
        "found_by_next_search": f"{found}/{args.upserts}",
        "compaction": compaction_run(args, engine, products),
    }


def compaction_run(args: argparse.Namespace, engine, products: list[Product]) -> dict:  # noqa: ANN001
    """Lexical index only: one batch of changed products past the delta threshold (the rebuild starts on a
    thread); searches while it runs; time until it is swapped in."""
    from dataclasses import replace

    lexical, table = engine.lexical, engine.table
    need = int(max(lexical.compact_min, lexical.compact_share * len(table))) + 1
    batch = [replace(p, title=p.title + " refreshed") for p in products[-need:]]
    start = time.perf_counter()
    lexical.upsert(table, table.upsert(batch))
    upsert_s = time.perf_counter() - start
    during, queries = [], query_mix(products, 5000, seed=args.seed + 5)
    for _, text in queries:
        if lexical.wait_for_compaction(timeout=0):
            break
        t = time.perf_counter()
        engine.search(text, k=10)
        during.append((time.perf_counter() - t) * 1000)
    lexical.wait_for_compaction()
    return {
        "batch": need,
        "batch_upsert_s": round(upsert_s, 2),
        "rebuild_done_after_s": round(time.perf_counter() - start, 2),
        "compactions": lexical.compactions,
        "searches_during_rebuild": percentiles(during) if during else None,
    }


def run_all(args: argparse.Namespace) -> None:
    """Every row, each in its own process under the heavy-job lock (latency on one core; builds on both cores,
    shared); JSON and markdown to --out."""
    out = args.out or REPO / "benchmarks" / "results" / "search-speed"
    out.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    cross = "none,standin:2,standin:2:int8:32,standin:1:int8:48,standin:6"
    runs = [
        ["serve", "--items", "100000", "--cross", cross, "--upserts", "100"],
        *[["build", "--items", "1000000", "--index", ix] for ix in ("lexical", "query", "dense")],
        *[["build", "--items", "100000", "--index", ix] for ix in ("lexical", "dense", "query")],
    ]
    rows = []
    for run in runs:
        pin = ["taskset", "-c", "1"] if run[0] == "serve" else []  # builds may use both cores (faiss threads)
        command = ["flock", "/work/coord/heavy.lock", *pin, *me, *run]
        print("running", " ".join(run), flush=True)
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            rows.append({"command": " ".join(run), "failed": done.stderr[-500:]})
            continue
        rows.extend(json.loads(done.stdout.strip().splitlines()[-1]))
        (out / "search_speed.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    (out / "search_speed.md").write_text(markdown(rows))
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    """The results as markdown: one line per run, then each latency run's stages and query kinds."""
    ok = [r for r in rows if "failed" not in r]
    lines = ["# Search speed (`benchmarks/search_speed.py`)", ""]
    if ok:
        m = ok[0]["machine"]
        lines += [
            f"Machine: {m['cpu']}, {m['cores']} cores shared with other jobs, {m['memory_gib']} GiB, "
            f"Python {m['python']}.",
            "Commits: "
            + ", ".join(sorted({r["commit"] for r in ok}))
            + ". Commands: "
            + "; ".join(sorted({f"`{r['command']}`" for r in ok}))
            + ".",
            "",
        ]
    lines += ["| run | items | what | result | load average before -> after |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(_summary_line(r))
    for r in ok:
        if r["run"] == "latency":
            lines += [
                "",
                f"Stages of `search` (ms, wall), cross-encoder: {r['cross']}",
                "",
                "| stage | p50 | p99 | mean |",
                "|---|---|---|---|",
            ]
            lines += [f"| {k} | {v['p50_ms']} | {v['p99_ms']} | {v['mean_ms']} |" for k, v in r["stages"].items()]
            lines += ["", "| query kind | n | p50 | p99 |", "|---|---|---|---|"]
            lines += [f"| {k} | {v['n']} | {v['p50_ms']} | {v['p99_ms']} |" for k, v in r["kinds"].items()]
        elif r["run"] == "upsert":
            lines += ["", "Upsert parts (ms, wall)", "", "| part | p50 | p99 |", "|---|---|---|"]
            lines += [f"| {k} | {v['p50_ms']} | {v['p99_ms']} |" for k, v in r["upsert_parts"].items()]
            lines += ["", f"Background lexical rebuild: `{json.dumps(r['compaction'])}`"]
    return "\n".join(lines) + "\n"


def _summary_line(r: dict) -> str:
    if "failed" in r:
        return f"| {r['command']} | | failed | {r['failed'][-120:]!r} | |"
    load = f"{r['load_before'].split('load average: ')[-1]} -> {r['load_after'].split('load average: ')[-1]}"
    if r["run"] == "build":
        b = r["build"]
        what = r["index"]
        if r["index"] == "dense":
            kind = "real" if r["real_vectors"] else "random"
            what += (
                f" ({r['encoder']}, {r['dim']}-d {kind} vectors, faiss {r['faiss_kind']}, {r['faiss_threads']} threads)"
            )
        result = (
            f"{b['seconds']} s wall, {b['cpu_seconds']} s CPU; peak +{b['peak_mib']} MiB, kept +{b['retained_mib']} MiB"
        )
    elif r["run"] == "latency":
        lat, cpu = r["latency"], r["cpu"]
        what = f"search k=10, {r['encoder']} query encoder; cross-encoder: {r['cross']}"
        result = (
            f"wall p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms; CPU p50 {cpu['p50_ms']} ms, "
            f"p99 {cpu['p99_ms']} ms (n={lat['n']})"
        )
    else:
        u, c = r["upsert"], r["compaction"]
        what = "upsert one product, then search for a word only it has"
        result = (
            f"upsert p50 {u['p50_ms']} ms, p99 {u['p99_ms']} ms; found by the next search {r['found_by_next_search']};"
            f" lexical rebuild after {c['batch']} changes in the background: swapped in after "
            f"{c['rebuild_done_after_s']} s (the upsert call took {c['batch_upsert_s']} s)"
        )
    return f"| {r['run']} | {r['items']:,} | {what} | {result} | {load} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run", choices=["build", "serve", "all", "render"], help="build: one index; serve: latency and upserts"
    )
    parser.add_argument("--items", type=int, default=100_000, help="catalogue size (default 100,000)")
    parser.add_argument("--index", choices=["lexical", "dense", "query"], default="lexical", help="build: which part")
    parser.add_argument("--encoder", default="use-multilingual", help="use-multilingual, minilm-int8 or minilm")
    parser.add_argument("--real", action="store_true", help="encode the items for real (else random unit vectors)")
    parser.add_argument(
        "--cross", default="none", help="serve: comma-separated none, standin:LAYERS, or a cross-encoder model folder"
    )
    parser.add_argument("--queries", type=int, default=1000, help="serve: timed queries per variant (default 1,000)")
    parser.add_argument("--upserts", type=int, default=0, help="serve: products then upserted one by one (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="all: folder for search_speed.json and .md")
    args = parser.parse_args()
    if args.run == "all":
        run_all(args)
        return
    if args.run == "render":
        out = args.out or REPO / "benchmarks" / "results" / "search-speed"
        (out / "search_speed.md").write_text(markdown(json.loads((out / "search_speed.json").read_text())))
        return
    head = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit(),
        "load_before": load(),
        "machine": machine(),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    rows = [run_build(args)] if args.run == "build" else run_serve(args)
    tail = {"load_after": load()}
    print(json.dumps([{**head, **row, **tail} for row in rows], ensure_ascii=False))


if __name__ == "__main__":
    main()
