"""Why each item of a shopper's list is there: a sentence per item (en/zh) and the heatmap grid of
history items by recommended items."""

from __future__ import annotations

from shoprec.service.ab import VersionManager
from shoprec.service.catalog import Catalog
from shoprec.service.history import Histories
from shoprec.service.served import ITEM_SCENARIOS, NotFound


def explain_list(
    versions: VersionManager,
    histories: Histories,
    catalog: Catalog,
    user_id: str,
    scenario: str = "home",
    lang: str = "en",
    k: int = 10,
    item_id: str | None = None,
) -> dict:
    """The user's current list with an explanation per item and the heatmap grid."""
    from shoprec.pipeline.explain_text import heatmap_data, render

    dep = versions.for_user(user_id)
    ctx, live = histories.context(dep, user_id)
    anchor = catalog.anchor(dep, item_id) if scenario in ITEM_SCENARIOS else None
    if anchor is not None and anchor < 0:
        raise NotFound(f"{item_id!r} is new since version {dep.version}: explanations cover trained items only")
    rec = dep.pipeline.recommend([ctx], k)[0] if scenario == "home" else dep.scenarios.run(scenario, ctx, k, anchor)
    explanations = dep.scenarios.explain(ctx, rec, scenario)
    rows = [
        {"item_id": exp.item_id, "title": exp.title, "text": render(exp, lang), "facts": exp.to_dict()}
        for exp in explanations
    ]
    return {
        "user_id": user_id,
        "scenario": scenario,
        "version": dep.version,
        "lang": lang,
        "live_state": live.state,
        "degraded": live.degraded,
        "items": rows,
        "heatmap": heatmap_data(ctx, explanations, dep.info),
    }
