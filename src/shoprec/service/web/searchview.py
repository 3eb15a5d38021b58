"""The dashboard's search page: the search box (the answer of ``GET /v1/search``, rendered), the user
lookup, and the search analytics panel (what shoppers look for and do not find).

A result shows how the query was understood ("brand: Nordhaus, max price: 50"), corrections and
relaxed constraints, then each product with its score, the share of the score each source gave
(lexical, dense, personal, ...) as a bar and in words, and why it matched. Everything shown comes from
data and goes through :func:`~shoprec.service.web.layout.esc`: a query is shopper text and may look
like HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from shoprec.service.web.layout import BASE, empty, esc, item_link, page, price, table, when

SHARE_COLOURS = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2")


@dataclass
class SearchView:
    """What the search page shows: the form as typed, the answer (``/v1/search``'s body) or the
    reason there is none, an item whose id is the query, and the analytics report."""

    query: str = ""
    shopper: str = ""
    lang: str = "en"
    answer: dict | None = None
    problem: str | None = None
    exact_item: dict | None = None
    analytics: dict | None = None
    analytics_problem: str | None = None


def search_url(query: str, shopper: str = "", lang: str = "en") -> str:
    params = {"q": query, **({"shopper": shopper} if shopper else {}), **({"lang": lang} if lang != "en" else {})}
    return f"{BASE}/search?{urlencode(params)}"


def render_search_page(view: SearchView) -> str:
    out = f"<h1>Search</h1><section>{_forms(view)}</section>"
    if view.problem:
        out += f'<div class="error" role="alert">{esc(view.problem)}</div>'
    elif view.answer is not None:
        out += _answer(view)
    out += _analytics(view)
    return page("Search", out, active="search")


def _forms(view: SearchView) -> str:
    languages = "".join(
        f'<option value="{code}"{" selected" if view.lang == code else ""}>{label}</option>'
        for code, label in (("en", "English"), ("zh", "中文"))
    )
    return (
        f'<form class="inline item-search" method="get" action="{BASE}/search">'
        f'<label>search products <input type="search" name="q" value="{esc(view.query)}" maxlength="256" '
        'placeholder="cordless drill under 100" autofocus></label>'
        f'<label>as shopper <input type="text" name="shopper" value="{esc(view.shopper)}" maxlength="128" '
        'placeholder="anonymous"></label>'
        f'<label>explain in <select name="lang">{languages}</select></label>'
        '<button type="submit">Search</button></form>'
        f'<form class="inline user-lookup" method="get" action="{BASE}/search">'
        '<label>user id <input type="text" name="user" maxlength="128" required></label>'
        '<button type="submit">Open user</button></form>'
    )


# ---------------------------------------------------------------------- the answer
def _answer(view: SearchView) -> str:
    answer = view.answer
    hits = answer["hits"]
    who = f" as {view.shopper}" if view.shopper else ""
    heading = f"{answer['total']:,} match(es) for {view.query}{who}" + (
        f", showing {len(hits)}" if len(hits) < answer["total"] else ""
    )
    exact = ""
    if view.exact_item is not None:
        link = item_link(view.exact_item["item_id"], view.exact_item["title"])
        exact = f'<p class="exact-item">Item with this id: {link}</p>'
    body = _understood(answer) + exact
    if hits:
        body += _hits(hits) + _facets(answer.get("facets") or {})
    else:
        body += empty("No product matches this search.")
    return f'<section class="search-results"><h2>{esc(heading)}</h2>{body}</section>'


def _understood(answer: dict) -> str:
    query = answer["query"]
    described = query.get("describe") or "no constraints"
    lines = [
        f'<p class="parsed">Understood as: <strong class="parsed-query">{esc(described)}</strong>'
        + (
            f' · words searched: <span class="terms">{esc(" ".join(query.get("terms") or []))}</span>'
            if query.get("terms")
            else ""
        )
        + f" · language {esc(query.get('language', ''))}</p>"
    ]
    if answer.get("corrections"):
        fixed = ", ".join(f"{wrong} → {right}" for wrong, right in answer["corrections"])
        lines.append(f'<p class="corrections">Spelling corrected: {esc(fixed)}</p>')
    if answer.get("relaxed"):
        lines.append(f'<p class="relaxed">Relaxed (nothing matched them all): {esc(", ".join(answer["relaxed"]))}</p>')
    notes = "".join(f"<li>{esc(n)}</li>" for n in answer.get("notes") or [])
    if notes:
        lines.append(f'<ul class="notes muted">{notes}</ul>')
    facts = [f"version {answer.get('version', '')}", "personalised" if answer.get("personalised") else "not personal"]
    if answer.get("search_id"):
        facts.append(f"search id {answer['search_id']}")
    lines.append(f'<p class="muted">{esc(" · ".join(facts))}</p>')
    return "".join(lines)


def _hits(hits: list[dict]) -> str:
    names = list(dict.fromkeys(name for hit in hits for name in hit.get("shares") or {}))
    colour = {name: SHARE_COLOURS[n % len(SHARE_COLOURS)] for n, name in enumerate(names)}
    legend = "".join(
        f'<span class="legend-item"><span class="swatch" style="background:{colour[name]}"></span>{esc(name)}</span>'
        for name in names
    )
    rows = [
        [
            str(n),
            item_link(hit["item_id"], hit["title"]),
            esc(hit.get("brand", "")),
            esc(hit.get("category", "")),
            price(hit.get("price")),
            f"{hit['score']:.4g}",
            _shares(hit.get("shares") or {}, colour),
            f'<span class="why">{esc(hit.get("explanation", ""))}</span>',
        ]
        for n, hit in enumerate(hits, start=1)
    ]
    headers = ["#", "product", "brand", "category", "price", "score", "score shares", "why it matched"]
    listing = table(headers, rows, numeric=frozenset({0, 4, 5}), css="results")
    return (f'<p class="legend">{legend}</p>' if legend else "") + listing


def _shares(shares: dict[str, float], colour: dict[str, str]) -> str:
    """A stacked bar (one segment per source, width = its share) and the shares in words."""
    if not shares:
        return ""
    parts = [(name, float(value)) for name, value in shares.items() if value > 0]
    bar = "".join(
        f'<span class="seg" style="width:{100 * value:.1f}%;background:{colour[name]}" title="{esc(name)}"></span>'
        for name, value in parts
    )
    words = " · ".join(f"{name} {value:.0%}" for name, value in parts)
    data = esc(" ".join(f"{name}={value:.4f}" for name, value in parts))
    return f'<span class="share-bar" data-shares="{data}">{bar}</span><span class="share-text">{esc(words)}</span>'


def _facets(facets: dict) -> str:
    blocks = []
    for name, counts in facets.items():
        if counts:
            values = ", ".join(f"{value} ({count})" for value, count in counts[:8])
            blocks.append(f"<li><strong>{esc(name)}</strong>: {esc(values)}</li>")
    return f'<ul class="facets muted">{"".join(blocks)}</ul>' if blocks else ""


# ---------------------------------------------------------------------- analytics
def _analytics(view: SearchView) -> str:
    title = "<h2>What shoppers search for and do not find</h2>"
    if view.analytics_problem:
        return (
            f'<section class="search-analytics">{title}<div class="error">{esc(view.analytics_problem)}</div></section>'
        )
    report = view.analytics
    if report is None:
        return ""
    window = report["window"]
    totals = report["totals"]
    span = f"searches since {when(window['since'])}" + (
        f" until {when(window['until'])}" if window.get("until") else ""
    )
    share = f"{totals['zero_result_searches'] / totals['searches']:.1%}" if totals["searches"] else "—"
    summary = (
        f'<p class="search-totals" data-searches="{totals["searches"]}">{esc(span)}: {totals["searches"]:,} searches, '
        f"{totals['zero_result_searches']:,} with no result ({esc(share)}); {totals['search_events']:,} events "
        f"followed a search ({totals['unknown_search_events']:,} with a search id the log does not know)</p>"
    )
    zero_rows = [
        [_query_link(r["query"]), f"{r['searches']:,}", f"{r['users']:,}", esc(when(r["last"]))]
        for r in report["zero_result"]
    ]
    zero = (
        table(
            ["query", "searches", "shoppers", "last searched"], zero_rows, numeric=frozenset({1, 2}), css="zero-result"
        )
        if zero_rows
        else empty("No search without results in this window.")
    )
    low_rows = [
        [
            _query_link(r["query"]),
            f"{r['searches']:,}",
            f"{r['clicked']:,}",
            f"{r['click_rate']:.1%}",
            f"{r['purchased']:,}",
            f"{r['mean_results']:.0f}",
            esc(when(r["last"])),
        ]
        for r in report["low_click"]
    ]
    rule = (
        f"searched at least {window['min_searches']} times with results, click-through below "
        f"{window['max_click_rate']:.0%} (a click, cart or purchase carrying the search id)"
    )
    headers = ["query", "searches", "acted on", "click-through", "purchases", "mean results", "last searched"]
    low = (
        table(headers, low_rows, numeric=frozenset({1, 2, 3, 4, 5}), css="low-click")
        if low_rows
        else empty("No query is searched often and rarely clicked in this window.")
    )
    return (
        f'<section class="search-analytics">{title}{summary}'
        f"<h3>Zero-result queries</h3>{zero}"
        f'<h3>Low-click queries</h3><p class="muted">{esc(rule)}</p>{low}</section>'
    )


def _query_link(query: str) -> str:
    return f'<a class="query-link" href="{esc(search_url(query))}">{esc(query)}</a>'
