"""The dashboard's page shell (nav bar, inline CSS), shared HTML helpers, and the login and error pages.

Everything that comes from data goes through :func:`esc` (or a helper built on it); links to items
and users quote the id as one path segment.

>>> html = page("Search", "<p>hi</p>", active="search")
>>> html.startswith("<!doctype html>")
True
"""

from __future__ import annotations

import re
import time
from html import escape
from pathlib import Path
from urllib.parse import quote

BASE = "/dashboard"
STYLE = Path(__file__).with_name("style.css").read_text(encoding="utf-8")
NAV = (
    ("overview", BASE, "Overview"),
    ("search", f"{BASE}/search", "Search"),
    ("experiments", f"{BASE}/experiments", "Experiments"),
)
_EMPHASIS = re.compile(r"\*([^*]+)\*")


def esc(value: object) -> str:
    """Text as HTML (quotes too, so it is safe inside attributes); None shows as an empty string."""
    return "" if value is None else escape(str(value), quote=True)


def rich(text: str) -> str:
    """Escaped text with the explanation's ``*title*`` marks shown as emphasis."""
    return _EMPHASIS.sub(r"<em>\1</em>", esc(text))


def item_url(item_id: str) -> str:
    return f"{BASE}/items/{quote(str(item_id), safe='')}"


def user_url(user_id: str, lang: str = "en") -> str:
    return f"{BASE}/users/{quote(str(user_id), safe='')}" + ("?lang=zh" if lang == "zh" else "")


def item_link(item_id: str, title: str | None = None) -> str:
    return f'<a class="item-link" href="{esc(item_url(item_id))}">{esc(title or item_id)}</a>'


def price(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def when(timestamp: float | None) -> str:
    """Unix seconds as a UTC date and time (empty when unknown)."""
    return "" if not timestamp else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(timestamp)))


def table(headers: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset(), css: str = "") -> str:
    """A data table; ``rows`` hold HTML already escaped, ``numeric`` columns align right."""

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="data {esc(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def empty(message: str) -> str:
    return f'<p class="empty">{esc(message)}</p>'


def page(title: str, body: str, active: str = "", lang: str = "en") -> str:
    """A whole page: head with the inline style, the nav bar, then ``body`` (HTML)."""
    links = "".join(
        f'<a href="{href}" class="{"active" if name == active else ""}">{esc(label)}</a>' for name, href, label in NAV
    )
    return (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · shoprec</title><style>{STYLE}</style></head><body>"
        f'<nav><span class="brand">shoprec</span>{links}</nav><main>{body}</main></body></html>'
    )


def error_page(title: str, message: str, hint: str = "") -> str:
    """A friendly error page: what went wrong and where to go next."""
    more = f"<p>{esc(hint)}</p>" if hint else ""
    body = (
        f'<h1>{esc(title)}</h1><div class="error" role="alert">{esc(message)}</div>{more}'
        f'<p><a href="{BASE}">Back to the overview</a> · <a href="{BASE}/search">Search</a></p>'
    )
    return page(title, body)


def login_page(next_url: str, problem: str | None) -> str:
    """The key form (POSTed, so the key stays out of the address bar and history); never shows a key."""
    alert = f'<div class="error" role="alert">{esc(problem)}</div>' if problem else ""
    body = (
        "<h1>Sign in to the dashboard</h1>"
        "<p>This service requires an API key with the <code>read</code> scope. Create one with "
        "<code>shoprec keys create --scope read</code> and paste it here; it is kept in an HttpOnly cookie "
        "for this browser.</p>"
        f"{alert}"
        f'<form class="inline login" method="post" action="{BASE}/login">'
        f'<input type="hidden" name="next" value="{esc(next_url)}">'
        '<label>API key <input type="password" name="key" autocomplete="off" required size="48"></label>'
        '<button type="submit">Sign in</button></form>'
    )
    return page("Sign in", body)
