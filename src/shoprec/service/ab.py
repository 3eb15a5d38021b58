"""Which model versions serve, and which one serves a given user.

The serving plan lives in the store (setting ``serving``), so every worker follows the same one::

    {"pinned": "v0002"}                                  # one version, whatever is newer on disk
    {"arms": {"v0002": 0.5, "v0003": 0.5}}               # A/B split by a stable hash of the user id
    {} or no setting                                     # the newest version on disk

A user's arm is ``sha256(salt + user_id)`` read as a number in [0, 1) against the cumulative
shares (arms in version order), so the same user always lands in the same arm on every worker and
after restarts, and changing the salt reshuffles everyone.

New versions load on a background thread while the current ones keep serving; the swap replaces
one dictionary reference, so no request waits for a load or sees half a version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path

from shoprec.errors import ConfigError
from shoprec.service.store.base import Store
from shoprec.service.versions import Deployed, list_versions, load_version

log = logging.getLogger(__name__)
SETTING = "serving"
EXPERIMENT = "experiment"
"""Setting holding the running A/B experiment's identity and start (see :func:`experiment_of`)."""
SHARE_TOLERANCE = 1e-6
"""How far from 1 an A/B plan's shares may sum (rounding of decimal shares)."""
RETRY_SECONDS = 60.0
"""A version that failed to load is tried again after this long (or at once on reload)."""


def user_bucket(user_id: str | None, salt: str = "") -> float:
    """Stable position of a user in [0, 1)."""
    digest = hashlib.sha256(f"{salt}\x1f{user_id or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def check_plan(plan: dict, available: list[str]) -> dict:
    """A serving plan checked against the versions on disk (ConfigError naming what is wrong)."""
    unknown_keys = set(plan) - {"pinned", "arms", "salt"}
    if unknown_keys:
        raise ConfigError(f"serving plan: unknown key {sorted(unknown_keys)[0]!r}; valid: pinned, arms, salt")
    if plan.get("pinned") and plan.get("arms"):
        raise ConfigError("serving plan: give either pinned or arms, not both")
    wanted = [plan["pinned"]] if plan.get("pinned") else list(plan.get("arms") or {})
    missing = [v for v in wanted if v not in available]
    if missing:
        raise ConfigError(f"serving plan: no version {missing[0]!r}; available: {', '.join(available) or 'none'}")
    arms = plan.get("arms") or {}
    if arms:
        shares = list(arms.values())
        if any(not isinstance(s, int | float) or isinstance(s, bool) or s < 0 for s in shares):
            raise ConfigError("serving plan: arm shares must be numbers >= 0")
        total = sum(shares)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ConfigError(
                f"serving plan: arm shares sum to {total:.6g}, not 1 "
                f"({', '.join(f'{v}={s:g}' for v, s in arms.items())})",
                fix="Give shares that add up to 1, e.g. {'v0002': 0.9, 'v0003': 0.1}",
            )
    return plan


def ab_arms(plan: dict | None) -> dict[str, float]:
    """The plan's arms with a positive share (an A/B experiment when there are two or more)."""
    return {v: float(s) for v, s in ((plan or {}).get("arms") or {}).items() if s and s > 0}


def experiment_of(store: Store, plan: dict, now: float) -> dict | None:
    """The A/B experiment ``plan`` runs: ``{"key", "id", "started"}``, recorded (setting ``experiment``)
    the first time the plan is set or seen, so that only traffic from then on is compared; None when
    the plan is not an A/B plan."""
    arms = ab_arms(plan)
    if len(arms) < 2:
        return None
    key = hashlib.sha256(json.dumps({"arms": arms, "salt": plan.get("salt", "")}, sort_keys=True).encode())
    known = store.get_setting(EXPERIMENT) or {}
    if known.get("key") == key.hexdigest()[:16]:
        return known
    control = control_of(arms)
    challengers = "-".join(v for v in sorted(arms, key=lambda v: int(v[1:])) if v != control)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    record = {"key": key.hexdigest()[:16], "id": f"{control}-vs-{challengers}-{stamp}", "started": now}
    store.set_setting(EXPERIMENT, record)
    return record


def control_of(arms: dict[str, float]) -> str:
    """An experiment's control: the arm with the largest share (the version that served before a
    challenger was published at a small share); on a tie the oldest version."""
    return min(arms, key=lambda v: (-arms[v], int(v[1:])))


class VersionManager:
    """The loaded versions and the current plan; :meth:`refresh` follows the store and the disk."""

    def __init__(self, models_dir: str | Path, store: Store, poll_seconds: float = 2.0) -> None:
        self.models_dir, self.store, self.poll_seconds = Path(models_dir), store, poll_seconds
        self.loaded: dict[str, Deployed] = {}
        self.plan: dict = {}
        self._failed: dict[str, tuple[float, str]] = {}
        """Version -> (monotonic time of the failed load, what failed)."""
        self.swaps = 0
        self.on_load = None
        """Called with each newly loaded :class:`Deployed` once it serves (the engine warms its cache)."""
        self._loading = threading.Lock()
        self._checked = 0.0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ choosing
    def wanted(self) -> tuple[dict, list[str]]:
        plan = self.store.get_setting(SETTING) or {}
        available = list_versions(self.models_dir)
        if plan.get("pinned"):
            return plan, [plan["pinned"]]
        if plan.get("arms"):
            return plan, sorted(plan["arms"], key=lambda v: int(v[1:]))
        return plan, available[-1:]

    def for_user(self, user_id: str | None) -> Deployed:
        self.maybe_refresh()
        loaded, plan = self.loaded, self.plan
        arms = {v: s for v, s in (plan.get("arms") or {}).items() if v in loaded and s > 0}
        if len(arms) > 1:
            point = user_bucket(user_id, plan.get("salt", "")) * sum(arms.values())
            for version in sorted(arms, key=lambda v: int(v[1:])):
                point -= arms[version]
                if point < 0:
                    return loaded[version]
        return self.default()

    def default(self) -> Deployed:
        loaded = self.loaded
        if not loaded:
            raise ConfigError(
                f"no model version is loaded from {self.models_dir}",
                fix=f"run 'shoprec train --models {self.models_dir}' and wait for the service to load it",
            )
        plan = self.plan
        for version in [plan.get("pinned"), *sorted(plan.get("arms") or {}, key=lambda v: -int(v[1:]))]:
            if version in loaded:
                return loaded[version]
        return loaded[max(loaded, key=lambda v: int(v[1:]))]

    # ------------------------------------------------------------------ loading
    def refresh(self, wait: bool = True) -> None:
        """Load what the plan wants and is not loaded, then swap; ``wait=False`` loads in the background."""
        plan, wanted = self.wanted()
        now = time.monotonic()
        waiting = [v for v, (failed_at, _) in self._failed.items() if now - failed_at < RETRY_SECONDS]
        missing = [v for v in wanted if v not in self.loaded and v not in waiting]
        if not missing:
            if plan != self.plan or set(self.loaded) != set(wanted):
                self._swap(plan, wanted, {})
            return
        if wait:
            self._load(plan, wanted, missing)
        elif self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._load, args=(plan, wanted, missing), daemon=True)
            self._thread.start()

    def maybe_refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked >= self.poll_seconds:
            self._checked = now
            try:
                self.refresh(wait=not self.loaded)
            except Exception as err:  # noqa: BLE001 - keep serving what is loaded
                log.error("model refresh failed: %s", err)

    def _load(self, plan: dict, wanted: list[str], missing: list[str]) -> None:
        with self._loading:
            fresh = {}
            for version in missing:
                began = time.perf_counter()
                try:
                    fresh[version] = load_version(self.models_dir / version)
                except Exception as err:  # noqa: BLE001 - a broken version must not take the service down
                    self._failed[version] = (time.monotonic(), f"{type(err).__name__}: {err}")
                    log.error("loading model %s failed: %s", version, err)
                    continue
                self._failed.pop(version, None)
                log.info("loaded model %s in %.1f s", version, time.perf_counter() - began)
            self._swap(plan, wanted, fresh)

    def _swap(self, plan: dict, wanted: list[str], fresh: dict[str, Deployed]) -> None:
        merged = {v: d for v, d in {**self.loaded, **fresh}.items() if v in wanted}
        if not merged and self.loaded:
            return  # nothing of the plan could load: keep serving the current versions
        self.loaded, self.plan = merged, plan
        self.swaps += 1
        for dep in fresh.values():
            if self.on_load is not None and dep.version in merged:
                self.on_load(dep)

    def set_plan(self, plan: dict) -> dict:
        """Check and store a new serving plan (every worker follows it within ``poll_seconds``)."""
        plan = check_plan(plan, list_versions(self.models_dir))
        self.store.set_setting(SETTING, plan)
        experiment_of(self.store, plan, time.time())
        self.forget_failures()
        return plan

    @property
    def load_errors(self) -> dict[str, str]:
        """Versions that failed to load, with what failed."""
        return {version: error for version, (_, error) in self._failed.items()}

    def forget_failures(self) -> None:
        """Let versions that failed to load be tried again on the next refresh."""
        self._failed.clear()
        self._checked = 0.0

    def status(self) -> dict:
        return {
            "models_dir": str(self.models_dir),
            "available": list_versions(self.models_dir),
            "loaded": {v: {"loaded_at": d.loaded_at, "manifest": _summary(d.manifest)} for v, d in self.loaded.items()},
            "plan": self.plan,
            "load_errors": self.load_errors,
            "swaps": self.swaps,
        }


def _summary(manifest: dict) -> dict:
    return {k: manifest.get(k) for k in ("version", "created", "encoder", "rank", "sources", "metrics", "data")}
