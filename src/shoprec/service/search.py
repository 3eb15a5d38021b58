"""Product lookup: items whose id or title contains a text, over the trained catalog and the API's items."""

from __future__ import annotations

from shoprec.service.catalog import Catalog, record_dict


def search_items(catalog: Catalog, text: str, limit: int = 20) -> list[dict]:
    """Items whose id or title contains ``text`` (case-insensitive): the API's items first (the
    store's search), then the serving version's, never a deleted one; at most ``limit``."""
    catalog.sync()
    dep = catalog.versions.default()
    needle = text.casefold()
    found: dict[str, dict] = {}
    for record in catalog.store.search_items(text, limit):
        found[record.item_id] = record_dict(record, new=dep.item_index(record.item_id) < 0)
    titles, ids = dep.info.title, dep.info.item_id
    hits = [i for i in range(len(ids)) if needle in str(ids[i]).casefold() or needle in str(titles[i]).casefold()]
    for index in hits:
        item_id = str(ids[index])
        if len(found) >= limit:
            break
        if item_id not in found and not catalog.overlay.is_deleted(item_id):
            found[item_id] = catalog.item(item_id)
    return list(found.values())[:limit]
