"""The service, in process, driven through its HTTP API (FastAPI's TestClient runs the app and its
lifespan): feeds are read and events posted exactly as a shop's front end would.

>>> with ShopService("models") as service:                      # doctest: +SKIP
...     listing = service.feed("U00001", k=10)
...     service.post_events([{"event_id": "e1", "user_id": "U00001", "item_id": listing["items"][0]["item_id"],
...                           "event": "click", "recommendation_id": listing["recommendation_id"]}])
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from shoprec.service.app import create_app
from shoprec.service.settings import ServiceSettings
from shoprec.service.store.base import Store

API = "/v1"
BATCH = 1000
"""Events per POST /v1/events/batch (the service's default limit)."""


class SimulationError(RuntimeError):
    """The service answered the simulator with an error (status and body in the message)."""


class ShopService:
    """One in-process service over ``models_dir`` (its SQLite store inside unless ``store_url``).

    Settings the simulation does not need are off: API keys (one trusted client), the feed cache's
    warm-up at start (every known shopper's feed, paid again at each version load), dense search.
    ``settings`` overrides any :class:`ServiceSettings` field (e.g. the exploration share).
    """

    def __init__(self, models_dir: str | Path, store_url: str | None = None, **settings) -> None:
        values = {
            "models_dir": str(models_dir),
            "store_url": store_url,
            "auth": False,
            "warm_cache": False,
            "search_dense": False,
            "poll_seconds": 3600.0,
            "max_batch": BATCH,
            "clock": "wall",
            **settings,
        }
        self.settings = ServiceSettings(**values)
        self.settings.check()
        self.client: TestClient | None = None

    def __enter__(self) -> ShopService:
        self.client = TestClient(create_app(self.settings), raise_server_exceptions=True)
        self.client.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.__exit__(*exc)
            self.client = None

    # ------------------------------------------------------------------ HTTP
    def _call(self, method: str, path: str, **kwargs) -> dict | list:
        if self.client is None:
            raise SimulationError("the service is not running: use ShopService as a context manager")
        response = self.client.request(method, API + path, **kwargs)
        if response.status_code >= 400:
            raise SimulationError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json()

    def feed(self, user_id: str, k: int = 10) -> dict:
        """The shopper's home feed (GET /v1/users/{user_id}/recommendations)."""
        return self._call("GET", f"/users/{user_id}/recommendations", params={"k": k})

    def post_events(self, events: list[dict]) -> int:
        """Post events in batches; returns how many the service accepted."""
        accepted = 0
        for start in range(0, len(events), BATCH):
            ack = self._call("POST", "/events/batch", json={"events": events[start : start + BATCH]})
            accepted += ack["accepted"]
        return accepted

    def reload(self) -> list[str]:
        """Make the service look for new versions now (POST /v1/models/reload); the loaded versions."""
        answer = self._call("POST", "/models/reload")
        if answer["load_errors"]:
            raise SimulationError(f"the service could not load a version: {answer['load_errors']}")
        return answer["loaded"]

    def set_plan(self, plan: dict) -> dict:
        """Set the serving plan (PUT /v1/models/plan): ``{}`` newest, ``{"pinned": v}``, ``{"arms": {...}}``."""
        return self._call("PUT", "/models/plan", json=plan)

    def models(self) -> dict:
        return self._call("GET", "/models")

    def online_stats(self, by: tuple[str, ...] = ("version",), since: float | None = None) -> list[dict]:
        """GET /v1/stats/online (flushes the impression log first)."""
        params: dict = {"by": list(by)}
        if since is not None:
            params["since"] = since
        return self._call("GET", "/stats/online", params=params)

    def get(self, path: str, **params) -> dict | list:
        """Any other GET under /v1 (for the parts other modules add, such as experiments)."""
        return self._call("GET", path, params=params)

    # ------------------------------------------------------------------ beside the API
    @property
    def store(self) -> Store:
        """The service's own store, for jobs that run beside it (retraining reads it, as the
        service's retrain thread would)."""
        return self.client.app.state.engine.store

    def flush(self) -> None:
        """Write the impressions the service is still holding (they are logged in the background)."""
        self.client.app.state.engine.impressions.flush()
