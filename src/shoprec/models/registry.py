"""Model name -> class. Swapping a model is a lookup here, nothing more."""

from __future__ import annotations

from typing import Any

from shoprec.errors import ModelError

_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} is already registered by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    import shoprec.models.builtin  # noqa: F401  (registers the built-in models)


def model_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type:
    _load_builtin()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, **settings: Any):
    """Instantiate a registered model with keyword settings (unknown settings are an error)."""
    return get_model_class(name)(**settings)
