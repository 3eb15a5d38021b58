"""The dashboard's user and item pages, rendered from what the engine returned.

The user page speaks English or Chinese (``lang``): its headings here, its sentences from the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoprec.service.served import ServedList
from shoprec.service.web.charts import heatmap_table
from shoprec.service.web.layout import empty, esc, item_link, item_url, page, price, rich, table, user_url

LABELS = {
    "en": {
        "profile": "Profile",
        "history": "Recent history",
        "recs": "Home recommendations and why",
        "heatmap": "Contribution heatmap",
        "caption": "Share of each recommended item's score that comes from "
        "each history item (rows: history, most recent first; columns: recommendations in list order)",
        "corner": "history ↓ / recommended →",
        "version": "model version",
        "events": "events in the snapshot",
        "live": "live events since",
        "known": "known to the model",
        "yes": "yes",
        "no": "no",
        "categories": "top categories",
        "no_history": "No history yet.",
        "no_recs": "No recommendations.",
        "no_heatmap": "No history item drives these recommendations (popular and trending items fill the list).",
        "switch": "中文",
    },
    "zh": {
        "profile": "用户画像",
        "history": "最近浏览与购买",
        "recs": "首页推荐及理由",
        "heatmap": "贡献热力图",
        "caption": "每个推荐商品的得分中来自每个历史商品的占比（行：历史商品，最近的在前；列：按推荐顺序）",
        "corner": "历史 ↓ / 推荐 →",
        "version": "模型版本",
        "events": "快照中的事件",
        "live": "之后的实时事件",
        "known": "模型已知",
        "yes": "是",
        "no": "否",
        "categories": "主要品类",
        "no_history": "暂无历史。",
        "no_recs": "暂无推荐。",
        "no_heatmap": "这些推荐不由任何历史商品驱动（由热门和趋势商品补足）。",
        "switch": "English",
    },
}


# ---------------------------------------------------------------------- user
def render_user(profile: dict, explained: dict, lang: str) -> str:
    text = LABELS[lang]
    other = "en" if lang == "zh" else "zh"
    categories = ", ".join(f"{c['category']} ({c['share']:.0%})" for c in profile["top_categories"])
    facts = table(
        ["", ""],
        [
            [esc(text["version"]), esc(profile["version"])],
            [esc(text["events"]), f"{profile['events']:,}"],
            [esc(text["live"]), f"{profile['live_events']:,}"],
            [esc(text["known"]), esc(text["yes"] if profile["known_to_model"] else text["no"])],
            [esc(text["categories"]), esc(categories)],
        ],
        css="facts",
    )
    body = (
        f'<h1>{esc(profile["user_id"])} <a class="lang-switch badge" href="{esc(user_url(profile["user_id"], other))}" '
        f'lang="{other}">{esc(text["switch"])}</a></h1>'
        f'<section><h2>{esc(text["profile"])}</h2><p class="sentence">{esc(profile["sentence"])}</p>{facts}</section>'
        f"<section><h2>{esc(text['history'])}</h2>{_history(profile['recent_items'], text)}</section>"
        f"<section><h2>{esc(text['recs'])}</h2>{_recs(explained['items'], text)}</section>"
        f"<section><h2>{esc(text['heatmap'])}</h2>{_heatmap(explained['heatmap'], text)}</section>"
    )
    return page(f"User {profile['user_id']}", body, lang=lang)


def _history(items: list[dict], text: dict) -> str:
    if not items:
        return empty(text["no_history"])
    rows = "".join(
        f"<li>{item_link(i['item_id'], i['title'])} "
        f'<span class="muted">{esc(i["category"])} · {price(i["price"])}</span></li>'
        for i in items
    )
    return f'<ol class="history">{rows}</ol>'


def _recs(items: list[dict], text: dict) -> str:
    if not items:
        return empty(text["no_recs"])
    rows = "".join(
        f'<li class="rec" data-item="{esc(r["item_id"])}">{item_link(r["item_id"], r["title"])}'
        f'<span class="why">{rich(r["text"])}</span></li>'
        for r in items
    )
    return f'<ol class="recs">{rows}</ol>'


def _heatmap(data: dict, text: dict) -> str:
    if not data["rows"] or not data["cols"]:
        return empty(text["no_heatmap"])
    grid = heatmap_table(
        rows=[r["label"] for r in data["rows"]],
        columns=[f"{n}. {c['label']}" for n, c in enumerate(data["cols"], start=1)],
        values=data["values"],
        row_tips=[f"{r['item_id']}: {r['title']}" for r in data["rows"]],
        column_tips=[f"{c['item_id']}: {c['title']}" for c in data["cols"]],
        caption=text["caption"],
        corner=text["corner"],
    )
    return f'<div class="heatmap-wrap">{grid}</div>'


# ---------------------------------------------------------------------- item
DEFAULT_BUNDLE_SIZE = "3"


@dataclass
class BundleView:
    """The bundle builder's inputs as typed (echoed into the form), and its result or the reason there is none."""

    budget: str = ""
    size: str = DEFAULT_BUNDLE_SIZE
    result: dict | None = None
    problem: str | None = None


def render_item(item: dict, similar: ServedList, complements: ServedList, bundle: BundleView) -> str:
    facts = table(
        ["", ""],
        [
            ["id", esc(item["item_id"])],
            ["category", esc(item["category"])],
            ["brand", esc(item["brand"])],
            ["price", price(item["price"])],
            ["in stock", "yes" if item["in_stock"] else "no"],
            ["tags", esc(", ".join(item["tags"]))],
            ["added since training", "yes" if item["new"] else "no"],
        ],
        css="facts",
    )
    body = (
        f"<h1>{esc(item['title'])}</h1><section><h2>Facts</h2>{facts}</section>"
        f'<section class="similar"><h2>Similar items</h2>{_served(similar)}</section>'
        f'<section class="complements"><h2>Complements (bought together, other categories)</h2>{_served(complements)}'
        f"</section>"
        f'<section class="bundle"><h2>Bundle builder</h2>{_bundle_form(item["item_id"], bundle)}'
        f"{_bundle_result(bundle)}</section>"
    )
    return page(item["title"], body)


def _served(served: ServedList) -> str:
    notes = "".join(f'<li class="muted">{esc(n)}</li>' for n in served.notes)
    if not served.items:
        return empty("Nothing to show.") + (f"<ul>{notes}</ul>" if notes else "")
    rows = [[item_link(s.item_id, s.title), esc(s.category), price(s.price), esc(s.source)] for s in served.items]
    listing = table(["item", "category", "price", "source"], rows, numeric=frozenset({2}), css="served")
    return listing + (f'<ul class="notes">{notes}</ul>' if notes else "")


def _bundle_form(item_id: str, bundle: BundleView) -> str:
    return (
        f'<form class="inline bundle-form" method="get" action="{esc(item_url(item_id))}">'
        f'<label>budget (total) <input type="number" name="budget" min="0.01" step="0.01" value="{esc(bundle.budget)}" '
        'placeholder="no limit"></label>'
        f'<label>items in bundle <input type="number" name="size" min="1" max="20" step="1" value="{esc(bundle.size)}">'
        '</label><button type="submit">Build bundle</button></form>'
    )


def _bundle_result(bundle: BundleView) -> str:
    if bundle.problem:
        return f'<div class="error bundle-error" role="alert">{esc(bundle.problem)}</div>'
    if bundle.result is None:
        return '<p class="muted">Set a budget and a size, then build a bundle around this item.</p>'
    result = bundle.result
    rows = [
        [
            item_link(r["item_id"], r["title"]),
            esc(r["category"]),
            f'<span class="price">{price(r["price"])}</span>',
            esc(r["role"]),
            esc(r["reason"]),
        ]
        for r in result["items"]
    ]
    notes = "".join(f'<li class="muted">{esc(n)}</li>' for n in result["notes"])
    return (
        f'<p class="bundle-summary">{esc(result["summary"])}</p>'
        + table(["item", "category", "price", "role", "why"], rows, numeric=frozenset({2}), css="bundle-items")
        + f'<p>Total <strong class="bundle-total" data-total="{result["total_price"]:.2f}">'
        f"{price(result['total_price'])}</strong> · solver {esc(result['solver'])} · "
        f"version {esc(result['version'])}</p>" + (f"<ul>{notes}</ul>" if notes else "")
    )
