"""Importing this module registers every built-in model."""

from shoprec.models import (
    als,  # noqa: F401
    content,  # noqa: F401
    ease,  # noqa: F401
    itemknn,  # noqa: F401
    lightgcn,  # noqa: F401
    popularity,  # noqa: F401
    sequential,  # noqa: F401
)
