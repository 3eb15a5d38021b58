"""Bundles from the serving version's bundle recommender (see :mod:`shoprec.bundles.api`)."""

from __future__ import annotations

from shoprec.service.ab import VersionManager


def serve_bundle(versions: VersionManager, **request) -> dict:
    """A bundle for the request (items, cart, user or intent; size, budget and category rules),
    with the version that built it."""
    from shoprec.bundles.api import recommend_bundle

    dep = versions.default()
    out = recommend_bundle(dep.bundles, **request)
    out["version"] = dep.version
    return out
