"""Model name -> class. Swapping a model is a lookup here, nothing more.

Built-in models are imported when first asked for, so a process that serves EASE or ALS never
imports PyTorch (about 180 MB of resident memory per API worker, and seconds of start-up).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from shoprec.errors import ModelError

_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} is already registered by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


BUILTIN = {
    "als": "shoprec.models.als",
    "content": "shoprec.models.content",
    "ease": "shoprec.models.ease",
    "gru4rec": "shoprec.models.sequential",
    "itemknn": "shoprec.models.itemknn",
    "lightgcn": "shoprec.models.lightgcn",
    "popularity": "shoprec.models.popularity",
    "sasrec": "shoprec.models.sequential",
    "trending": "shoprec.models.popularity",
}
"""Built-in model name -> the module that registers it."""


def model_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(BUILTIN))


def get_model_class(name: str) -> type:
    if name not in _REGISTRY and name in BUILTIN:
        import_module(BUILTIN[name])
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(model_names())}")
    return _REGISTRY[name]


def create_model(name: str, **settings: Any):
    """Instantiate a registered model with keyword settings (unknown settings are an error)."""
    return get_model_class(name)(**settings)
