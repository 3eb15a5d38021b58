"""What the service knows about a shopper: a sentence, top categories and tags, recent items."""

from __future__ import annotations

import pandas as pd

from shoprec.service.ab import VersionManager
from shoprec.service.catalog import Catalog
from shoprec.service.history import Histories
from shoprec.service.served import NotFound


def user_profile(versions: VersionManager, histories: Histories, catalog: Catalog, user_id: str, lang: str) -> dict:
    """The profile of ``user_id`` from the serving version's snapshot and the live events (NotFound
    for a user with no events at all)."""
    dep = versions.for_user(user_id)
    ctx, live = histories.context(dep, user_id)
    if not len(ctx.history) and not live and not live.degraded:
        raise NotFound(f"unknown user {user_id!r}: no events from this user yet")
    profiles = dep.profiles.empty()
    if len(ctx.history):
        frame = pd.DataFrame(
            {
                "item_id": dep.info.item_id[ctx.history],
                "event": ctx.events if len(ctx.events) == len(ctx.history) else "click",
                "timestamp": ctx.times,
            }
        )
        profiles.update(user_id, frame)
    else:
        profiles.update(user_id, None)
    recent = [str(dep.info.item_id[i]) for i in ctx.recent(20).tolist()]
    return {
        "user_id": user_id,
        "version": dep.version,
        "known_to_model": ctx.user >= 0,
        "sentence": profiles.describe(user_id, lang),
        "events": int(len(ctx.history)),
        "live_events": len(live),
        "live_state": live.state,
        "degraded": live.degraded,
        "top_categories": [{"category": c, "share": round(float(s), 3)} for c, s in profiles.top_categories(user_id)],
        "top_tags": [t for t, _ in profiles.top_tags(user_id)],
        "recent_items": [catalog.item(i) for i in recent if not catalog.overlay.is_deleted(i)],
    }
