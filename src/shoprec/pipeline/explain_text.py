"""Explanations as words and pictures: 1-2 sentence templates (en, zh) and a driver heatmap.

Every word comes from an :class:`~shoprec.pipeline.explain.Explanation`'s facts: the cited
drivers and their shares, what the item shares with them, co-purchase counts, the proposing
sources. Nothing is invented, so a text can be shown without review; an LLM may rephrase it
(:mod:`shoprec.pipeline.llm`).

>>> render(explanations[0])                                               # doctest: +SKIP
'Because you viewed *Nordhaus espresso cup* (62%); both are in Home & Kitchen > Kitchen and by
Nordhaus. Suggested by your recent history and trending items.'
>>> render(explanations[0], lang="zh")                                    # doctest: +SKIP
'因为您浏览过「Nordhaus espresso cup」(62%)，二者同属「Home & Kitchen > Kitchen」、同为Nordhaus品牌。
由您最近的浏览记录和正在流行的商品推荐。'
>>> plot_heatmap(heatmap_data(context, explanations, info), "why.png")   # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from shoprec.errors import ConfigError
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.explain import Driver, Explanation, Shared, SourceFact

LANGUAGES = ("en", "zh")
"""Languages :func:`render` writes."""

SOURCE_PHRASES: dict[str, tuple[str, str]] = {
    "sasrec": ("your recent history", "您最近的浏览记录"),
    "gru4rec": ("your recent history", "您最近的浏览记录"),
    "session": ("your recent history", "您最近的浏览记录"),
    "recent": ("your recent history", "您最近的浏览记录"),
    "itemknn": ("items like the ones you chose", "与您选过的商品相似的商品"),
    "ease": ("shoppers with similar tastes", "口味相近的顾客"),
    "als": ("shoppers with similar tastes", "口味相近的顾客"),
    "lightgcn": ("shoppers with similar tastes", "口味相近的顾客"),
    "content": ("products with similar descriptions", "描述相似的商品"),
    "text": ("products with similar descriptions", "描述相似的商品"),
    "complement": ("items often bought together", "常被一起购买的商品"),
    "co_basket": ("items often bought together", "常被一起购买的商品"),
    "trending": ("trending items", "正在流行的商品"),
    "popularity": ("popular items", "热门商品"),
    "new": ("new arrivals", "新品"),
    "queries": ("your recent searches", "您最近的搜索"),
    "search": ("your recent searches", "您最近的搜索"),
}
"""Source name (or name prefix) -> how the text names it (en, zh). Other names are quoted as is."""

_VERBS = {
    "en": {"purchase": "bought {}", "cart": "added {} to your cart", "rating": "rated {}", "": "viewed {}"},
    "zh": {"purchase": "购买过{}", "cart": "将{}加入过购物车", "rating": "评价过{}", "": "浏览过{}"},
}
FONT_FALLBACK = (
    "DejaVu Sans",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Arial Unicode MS",
)
"""Fonts tried in order for heatmap labels (Latin first, then CJK); absent ones are skipped."""


def render(explanation: Explanation, lang: str = "en") -> str:
    """The explanation as 1-2 short sentences in ``lang`` (``en`` or ``zh``), facts only."""
    if lang not in LANGUAGES:
        raise ConfigError(
            f"unknown explanation language {lang!r}",
            where="render(lang=...)",
            fix=f"use one of: {', '.join(LANGUAGES)}",
        )
    en = lang == "en"
    first = _why_clause(explanation, lang)
    rest = [part for part in (_co_purchase_clause(explanation, lang), _sources_clause(explanation, lang)) if part]
    second = ("; " if en else "；").join(rest)
    if not first and not second:
        return "Recommended for you." if en else "为您推荐。"
    stop = "." if en else "。"
    sentences = [s[0].upper() + s[1:] + stop if en else s + stop for s in (first, second) if s]
    return " ".join(sentences) if en else "".join(sentences)


def _title(title: str, lang: str) -> str:
    return f"*{title}*" if lang == "en" else f"「{title}」"


def _cite(driver: Driver, lang: str) -> str:
    """A driver as "*title* (62%)" (en) or "「title」(62%)" (zh)."""
    space = " " if lang == "en" else ""
    return f"{_title(driver.title, lang)}{space}({_percent(driver.share)})"


def _percent(share: float) -> str:
    pct = round(share * 100)
    return f"{pct}%" if pct > 0 else "<1%"


def _join(parts: list[str], lang: str) -> str:
    if lang == "zh":
        return "、".join(parts[:-1]) + ("和" if len(parts) > 1 else "") + parts[-1]
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def _why_clause(explanation: Explanation, lang: str) -> str:
    """The first sentence: drivers and what they share ("because you viewed ...; both are ..."),
    the cold-start line, or "" when no driver is known."""
    if explanation.cold:
        return "popular now - you have no history with us yet" if lang == "en" else "当前热门——您还没有浏览记录"
    cited = explanation.drivers[: explanation.cited]
    if not cited:
        return ""
    groups: list[tuple[str, list[Driver]]] = []  # runs of drivers with the same verb
    for driver in cited:
        verb = driver.event if driver.event in _VERBS[lang] else ""
        if groups and groups[-1][0] == verb:
            groups[-1][1].append(driver)
        else:
            groups.append((verb, [driver]))
    acts = [_VERBS[lang][verb].format(_join([_cite(d, lang) for d in ds], lang)) for verb, ds in groups]
    shared = _shared_clause(explanation.shared, len(cited), lang)
    if lang == "en":
        return "because you " + " and ".join(acts) + (f"; {shared}" if shared else "")
    return "因为您" + "，并".join(acts) + (f"，{shared}" if shared else "")


def _shared_clause(shared: Shared, n_drivers: int, lang: str) -> str:
    if not shared:
        return ""
    en = lang == "en"
    facts = []
    if shared.category:
        facts.append(f"in {shared.category}" if en else f"同属「{shared.category}」")
    if shared.brand:
        facts.append(f"by {shared.brand}" if en else f"同为{shared.brand}品牌")
    if shared.tags:
        tags = ", ".join(shared.tags[:3])
        facts.append(f"tagged {tags}" if en else "都带有" + "".join(f"「{t}」" for t in shared.tags[:3]) + "标签")
    for key, value in list(shared.attributes.items())[:2]:
        facts.append(f"{value} ({key})" if en else f"{key}同为{value}")
    if en:
        subject = {1: "both are", 2: "all three are"}.get(n_drivers, "all are")
        return f"{subject} {_join(facts, lang)}"
    subject = {1: "二者", 2: "三者"}.get(n_drivers, "它们")
    return subject + "、".join(facts)


def _co_purchase_clause(explanation: Explanation, lang: str) -> str:
    if not explanation.co_purchase:
        return ""
    top = explanation.co_purchase[0]
    if lang == "en":
        return f"bought together with {_title(top.title, lang)} in {top.orders} order{'s' * (top.orders != 1)}"
    return f"曾与{_title(top.title, lang)}在{top.orders}个订单中一起购买"


def source_phrase(name: str, lang: str = "en") -> str:
    """How a text names a recall source: a known name or prefix's phrase, else the name quoted."""
    lowered = name.lower()
    for key, phrases in SOURCE_PHRASES.items():
        if lowered == key or lowered.startswith(key):
            return phrases[LANGUAGES.index(lang)]
    return f"the {name} source" if lang == "en" else f"「{name}」渠道"


def _sources_clause(explanation: Explanation, lang: str, most: int = 2) -> str:
    named: list[SourceFact] = [s for s in explanation.sources if s.share is None or s.share > 0]
    phrases: list[str] = []
    for fact in named:
        phrase = source_phrase(fact.name, lang)
        if phrase not in phrases:
            phrases.append(phrase)
    if not phrases:
        return ""
    joined = _join(phrases[:most], lang)
    return f"suggested by {joined}" if lang == "en" else f"由{joined}推荐"


def _cut(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def heatmap_data(context: UserContext, explanations: list[Explanation], info: ItemInfo) -> dict:
    """Driver shares as a JSON-ready grid: rows = history items that drive some recommendation
    (most recent first), columns = recommended items (in list order), values = shares in [0, 1]."""
    recency = {int(item): rank for rank, item in enumerate(context.recent(len(context.history)).tolist())}
    rows = sorted({d.item for e in explanations for d in e.drivers}, key=lambda i: (recency.get(i, len(recency)), i))
    where = {item: r for r, item in enumerate(rows)}
    values = np.zeros((len(rows), len(explanations)))
    for c, explanation in enumerate(explanations):
        for driver in explanation.drivers:
            values[where[driver.item], c] = driver.share

    def label(item: int) -> dict:
        title = str(info.title[item])
        return {"item": item, "item_id": str(info.item_id[item]), "title": title, "label": _cut(title)}

    return {
        "value": "share of the recommended item's score from this history item",
        "scenario": explanations[0].scenario if explanations else "",
        "rows": [label(i) for i in rows],
        "cols": [label(e.item) for e in explanations],
        "values": values.round(4).tolist(),
    }


def plot_heatmap(data: dict, path: str | Path, dpi: int = 120) -> Path:
    """Draw :func:`heatmap_data` as a PNG at ``path`` (folders created); returns the path.

    Uses matplotlib's Agg canvas without pyplot (no global backend change). Labels try CJK fonts
    after DejaVu Sans; without any CJK font Chinese glyphs draw as boxes instead of failing.
    """
    from matplotlib import font_manager, rc_context
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    installed = {f.name for f in font_manager.fontManager.ttflist}
    fonts = [f for f in FONT_FALLBACK if f in installed] or ["sans-serif"]
    cjk = any(f in installed for f in FONT_FALLBACK if f not in ("DejaVu Sans", "sans-serif"))

    def tick(entry: dict) -> str:
        # without a CJK font, a Chinese title would draw as boxes: show the item id instead
        return entry["label"] if cjk or not _has_cjk(entry["label"]) else f"{entry['item_id']} (zh)"

    values = np.asarray(data["values"], dtype=np.float64).reshape(len(data["rows"]), len(data["cols"]))
    n_rows, n_cols = values.shape
    with rc_context({"font.family": fonts}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        fig = Figure(figsize=(2.5 + 0.55 * max(n_cols, 4), 2.0 + 0.4 * max(n_rows, 3)), layout="constrained")
        ax = fig.subplots()
        if values.size == 0:
            ax.text(0.5, 0.5, "no history item drives these recommendations", ha="center", va="center")
            ax.set_axis_off()
        else:
            image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_xticks(range(n_cols), [tick(c) for c in data["cols"]], rotation=40, ha="right", fontsize=8)
            ax.set_yticks(range(n_rows), [tick(r) for r in data["rows"]], fontsize=8)
            ax.set_xlabel("recommended item")
            ax.set_ylabel("history item (most recent first)")
            if n_rows * n_cols <= 400:  # cell labels stay readable up to about 20 x 20
                _label_cells(ax, values)
            fig.colorbar(image, ax=ax, label="share of score")
        fig.savefig(path, dpi=dpi, format="png")
    return path


def _has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uff00" <= ch <= "\uffef" for ch in text)


def _label_cells(ax, values: np.ndarray) -> None:
    """Write each nonzero share as a percentage in its cell (white on dark cells)."""
    for (r, c), v in np.ndenumerate(values):
        if v > 0:
            colour = "white" if v > 0.5 else "black"
            ax.text(c, r, f"{v:.0%}", ha="center", va="center", fontsize=7, color=colour)
