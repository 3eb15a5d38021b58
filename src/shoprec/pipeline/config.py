"""A pipeline described in a TOML file: sources, ranking, rules, promotions, explanations.

Every table and key is checked when the file is loaded: an unknown key, a wrong type or
conflicting rules fail here, with the file and key named, not at the first request.

```toml
[pipeline]
k = 10
recall_k = 100          # candidates per source (a source may set its own k)
rank = "learned"        # learned | fusion | none
exclude_seen = true

[[source]]
name = "sasrec"
type = "model"
model = "sasrec"
settings = { item_repr = "fused" }

[[source]]
name = "also-bought"
type = "item-to-item"
similarity = "cooccurrence"

[[source]]
name = "trending"
type = "popularity"
window_days = 7

[[source]]
name = "searched"       # the shopper's recent search queries, matched to item texts
type = "queries"        # needs the encoder that made the item vectors (Resources.encoder)
recent = 5

[ranker]
objective = "binary"

[rules]
exclude_purchased = true
blocked_words = ["replica"]
mmr_lambda = 0.8

[[promotion]]
name = "Singles Day"
start = 2025-11-11
end = 2025-11-11
tags = ["gift"]
boost = 0.5
```

>>> config = load_config("pipeline.toml")     # doctest: +SKIP
>>> pipe = build_pipeline(config)              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import inspect
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoprec.errors import ConfigError, ShoprecError
from shoprec.pipeline.base import Source
from shoprec.pipeline.calendar import Calendar
from shoprec.pipeline.pipeline import RANK_MODES, Pipeline
from shoprec.pipeline.querysource import QuerySource
from shoprec.pipeline.ranking import RankerConfig, WeightedFusion
from shoprec.pipeline.rules_config import RulesConfig
from shoprec.pipeline.sources import (
    BuyAgainSource,
    ItemToItemSource,
    ModelSource,
    NewArrivalsSource,
    PopularitySource,
)

SOURCE_TYPES: dict[str, type[Source]] = {
    "model": ModelSource,
    "item-to-item": ItemToItemSource,
    "buy-again": BuyAgainSource,
    "popularity": PopularitySource,
    "new-arrivals": NewArrivalsSource,
    "queries": QuerySource,
}
TOP_LEVEL = ("pipeline", "source", "ranker", "fusion", "rules", "promotion", "explain")


@dataclass
class PipelineConfig:
    """The parsed file; :func:`build_pipeline` turns it into a :class:`Pipeline`."""

    k: int = 10
    recall_k: int = 100
    rank: str = "learned"
    exclude_seen: bool = True
    sources: list[dict] = field(default_factory=list)
    ranker: RankerConfig = field(default_factory=RankerConfig)
    fusion: dict = field(default_factory=dict)
    rules: RulesConfig = field(default_factory=RulesConfig)
    calendar: Calendar | None = None
    explain: dict = field(default_factory=dict)
    where: str = "pipeline config"


def load_config(path: str | Path) -> PipelineConfig:
    """Read and check a pipeline TOML file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"no such file: {path}", fix="Give the path of a pipeline TOML file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}", where=str(path)) from None
    return config_from_dict(data, where=path.name)


def config_from_dict(data: dict[str, Any], where: str = "pipeline config") -> PipelineConfig:
    """Check a parsed TOML document (or an equivalent dict) and build the config."""
    _no_unknown(data, TOP_LEVEL, where)
    head = data.get("pipeline", {})
    _no_unknown(head, ("k", "recall_k", "rank", "exclude_seen"), f"{where}: [pipeline]")
    config = PipelineConfig(where=where, **head)
    if not isinstance(config.k, int) or config.k < 1 or not isinstance(config.recall_k, int) or config.recall_k < 1:
        raise ConfigError("k and recall_k must be whole numbers >= 1", where=f"{where}: [pipeline]")
    if config.rank not in RANK_MODES:
        raise ConfigError(
            f"rank must be one of {', '.join(RANK_MODES)}, not {config.rank!r}", where=f"{where}: [pipeline]"
        )
    config.sources = list(data.get("source", []))
    if not config.sources:
        raise ConfigError("no [[source]] tables: a pipeline needs at least one recall source", where=where)
    for i, table in enumerate(config.sources):
        build_source(table, config.exclude_seen, where=f"{where}: [[source]] #{i + 1}")  # check early
    config.ranker = _dataclass(RankerConfig, data.get("ranker", {}), f"{where}: [ranker]")
    config.fusion = dict(data.get("fusion", {}))
    _no_unknown(config.fusion, ("weights", "c"), f"{where}: [fusion]")
    config.rules = RulesConfig.from_dict(data.get("rules", {}), where=f"{where}: [rules]")
    config.rules.check(where=f"{where}: [rules]")
    if data.get("promotion"):
        config.calendar = Calendar.from_dicts(data["promotion"], source=where)
    config.explain = dict(data.get("explain", {}))
    _no_unknown(config.explain, ("lang", "llm"), f"{where}: [explain]")
    return config


def build_source(table: dict[str, Any], exclude_seen: bool = True, where: str = "source") -> Source:
    """One recall source from its table: ``name``, ``type`` and the type's own settings."""
    table = dict(table)
    name, kind = table.pop("name", None), table.pop("type", None)
    if not name or not isinstance(name, str):
        raise ConfigError("every source needs a name", where=where)
    if kind not in SOURCE_TYPES:
        raise ConfigError(f"source {name!r}: type must be one of {', '.join(SOURCE_TYPES)}, not {kind!r}", where=where)
    table.pop("k", None)  # per-source recall depth, read by build_pipeline
    cls = SOURCE_TYPES[kind]
    if kind == "model":
        return _model_source(name, table, exclude_seen, where)
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p in params if p not in ("self", "name")]
    _no_unknown(table, valid + ["k"], f"{where} ({name})")
    if "exclude_seen" in params:
        table.setdefault("exclude_seen", exclude_seen)
    try:
        return cls(name, **table)
    except TypeError as err:
        raise ConfigError(f"source {name!r}: {err}", where=where) from None


def _model_source(name: str, table: dict, exclude_seen: bool, where: str) -> ModelSource:
    from shoprec.models import create_model

    _no_unknown(table, ("model", "settings", "exclude_seen"), f"{where} ({name})")
    if "model" not in table:
        raise ConfigError(f"source {name!r} of type 'model' needs model = \"<registered model>\"", where=where)
    try:
        model = create_model(table["model"], **table.get("settings", {}))
    except ShoprecError as err:
        raise ConfigError(f"source {name!r}: {err}", where=where) from None
    return ModelSource(name, model, exclude_seen=table.get("exclude_seen", exclude_seen))


def build_pipeline(config: PipelineConfig) -> Pipeline:
    """A fresh, unfitted pipeline from a checked config."""
    from shoprec.pipeline.ranking import LearnedRanker

    sources = [build_source(t, config.exclude_seen, where=f"{config.where}: [[source]]") for t in config.sources]
    recall_k = {t["name"]: int(t.get("k", config.recall_k)) for t in config.sources}
    fusion = WeightedFusion(weights=dict(config.fusion.get("weights", {})), c=float(config.fusion.get("c", 10.0)))
    unknown = sorted(set(fusion.weights) - {s.name for s in sources})
    if unknown:
        raise ConfigError(
            f"fusion weights for unknown sources: {', '.join(unknown)}", where=f"{config.where}: [fusion]"
        )
    return Pipeline(
        sources,
        rank=config.rank,
        recall_k=recall_k,
        k=config.k,
        rules=config.rules,
        ranker=LearnedRanker(config.ranker),
        fusion=fusion,
        exclude_seen=config.exclude_seen,
        calendar=config.calendar,
    )


def _dataclass(cls: type, values: dict, where: str) -> Any:
    _no_unknown(values, [f.name for f in dataclasses.fields(cls)], where)
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err), where=where) from None


def _no_unknown(table: Any, valid: Any, where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"expected a table, got {type(table).__name__}", where=where)
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(valid))}", where=where)
