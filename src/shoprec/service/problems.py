"""HTTP status of each known error, shared by the JSON API (``app.py``) and the dashboard's pages."""

from __future__ import annotations

from shoprec.errors import ConfigError, DataError, ModelError, ShoprecError
from shoprec.service.auth import AuthError, RateLimited
from shoprec.service.served import NotFound, UnknownItems
from shoprec.service.store.base import StoreError

STATUS = [
    (NotFound, 404),
    (UnknownItems, 422),
    (AuthError, 401),
    (RateLimited, 429),
    (StoreError, 503),
    (DataError, 422),
    (ConfigError, 400),
    (ModelError, 409),
    (ShoprecError, 400),
]
"""First match wins: subclasses before their bases."""


def status_of(err: ShoprecError) -> int:
    """The HTTP status for a known error (an :class:`AuthError` carries its own: 401 or 403)."""
    if isinstance(err, AuthError):
        return err.status
    return next(code for cls, code in STATUS if isinstance(err, cls))
