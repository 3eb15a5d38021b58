"""Recommenders behind one interface, found by name in the registry."""

from shoprec.models.base import PAD_ITEM, Recommender, top_k
from shoprec.models.registry import create_model, get_model_class, model_names, register

__all__ = ["PAD_ITEM", "Recommender", "create_model", "get_model_class", "model_names", "register", "top_k"]
