"""Importing this module registers every built-in model."""

from shoprec.models import popularity  # noqa: F401
