"""The search log's SQL, shared by both backends: answered searches and the analytics over them.

Each search is one row of ``searches`` (id, user, query as typed, its normalised form, matches
before paging, time). Events that followed a search carry its ``search_id`` (and the query, copied
from the log when the event is stored). The analytics group searches by normalised query:

- **zero-result**: queries with searches that matched nothing, with how often and by how many shoppers;
- **low-click**: queries searched at least ``min_searches`` times (with results) whose click-through
  (share of searches followed by a click, cart or purchase event carrying the search id; each search
  counts once however many events it led to) is below ``max_click_rate``.

Every value is a parameter. Engagement is one ``EXISTS`` per search of the window over the partial
index ``events(search_id, event)``, so the cost grows with the searches in the window, not with the
whole history of events.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from shoprec.service.store.base import SearchRecord, StoreError

SEARCH_COLS = "search_id, user_id, query, n_results, ts"
INSERT_SEARCH = (
    "INSERT INTO searches (search_id, user_id, query, normalized, n_results, ts) "
    "SELECT ?, CASE WHEN EXISTS (SELECT 1 FROM forgotten_users WHERE user_id = ?) THEN NULL ELSE ? END, ?, ?, ?, ? "
    "WHERE 1 = 1 ON CONFLICT (search_id) DO NOTHING"
)
"""A search of a user who asked to be forgotten is logged as anonymous (the ``WHERE`` lets SQLite
parse ``ON CONFLICT`` after a ``SELECT``)."""
ENGAGED = ("click", "cart", "purchase")
"""Events that count as acting on a search result."""
_SPACES = re.compile(r"\s+")
_ACTED = "EXISTS (SELECT 1 FROM events e WHERE e.search_id = s.search_id AND e.event IN ({}))"


def normalize(query: str) -> str:
    """The form analytics group queries by: NFKC, case-folded, surrounding and repeated spaces removed.

    >>> normalize("  Cordless   DRILL ")
    'cordless drill'
    """
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", query).casefold()).strip()


def search_params(search_id: str, user_id: str | None, query: str, n_results: int, at: float) -> tuple:
    """The ``INSERT_SEARCH`` parameters (the user id twice), after checking what the log cannot hold."""
    if not isinstance(search_id, str) or not search_id:
        raise StoreError(f"search_id must be a non-empty string, got {search_id!r}")
    if not isinstance(query, str):
        raise StoreError(f"search {search_id!r}: query must be a string, got {type(query).__name__}")
    if int(n_results) != n_results or n_results < 0:
        raise StoreError(f"search {search_id!r}: n_results must be a whole number >= 0, got {n_results!r}")
    user_id = user_id or None
    return (search_id, user_id, user_id, query, normalize(query), int(n_results), float(at))


def search_record(row: Sequence) -> SearchRecord:
    return SearchRecord(row[0], row[1], row[2], int(row[3]), float(row[4]))


def window(since: float | None, until: float | None, column: str = "ts") -> tuple[str, list]:
    """``AND``-able conditions (starting with ``AND``, or empty) on ``column`` and their parameters."""
    where, params = "", []
    if since is not None:
        where += f" AND {column} >= ?"
        params.append(float(since))
    if until is not None:
        where += f" AND {column} < ?"
        params.append(float(until))
    return where, params


def check_analytics(min_searches: int, max_click_rate: float, limit: int) -> None:
    if int(min_searches) != min_searches or min_searches < 1:
        raise StoreError(f"min_searches must be a whole number >= 1, got {min_searches!r}")
    if not 0 <= max_click_rate <= 1:
        raise StoreError(f"max_click_rate must be between 0 and 1, got {max_click_rate!r}")
    if int(limit) != limit or limit < 1:
        raise StoreError(f"limit must be a whole number >= 1, got {limit!r}")


def zero_result_query(since: float | None, until: float | None, limit: int) -> tuple[str, list]:
    """Columns: normalised query, searches, distinct shoppers, last time, one form of it as typed."""
    where, params = window(since, until)
    sql = (
        "SELECT normalized, COUNT(*), COUNT(DISTINCT user_id), MAX(ts), MAX(query) "
        f"FROM searches s WHERE n_results = 0{where} "
        "GROUP BY normalized ORDER BY COUNT(*) DESC, normalized LIMIT ?"
    )
    return sql, [*params, int(limit)]


def low_click_query(
    since: float | None, until: float | None, min_searches: int, max_click_rate: float, limit: int
) -> tuple[str, list]:
    """Columns: normalised query, searches, searches acted on, searches with a purchase, distinct
    shoppers, mean results, last time; lowest click-through first, then the most searched."""
    where, params = window(since, until)
    marks = ", ".join("?" * len(ENGAGED))
    sql = (
        "SELECT normalized, COUNT(*), SUM(acted), SUM(bought), COUNT(DISTINCT user_id), AVG(n_results), MAX(ts) "
        f"FROM (SELECT normalized, user_id, n_results, ts, "
        f"CASE WHEN {_ACTED.format(marks)} THEN 1 ELSE 0 END AS acted, "
        f"CASE WHEN {_ACTED.format('?')} THEN 1 ELSE 0 END AS bought "
        f"FROM searches s WHERE n_results > 0{where}) t "
        "GROUP BY normalized HAVING COUNT(*) >= ? AND SUM(acted) < ? * COUNT(*) "
        "ORDER BY CAST(SUM(acted) AS DOUBLE PRECISION) / COUNT(*), COUNT(*) DESC, normalized LIMIT ?"
    )
    return sql, [*ENGAGED, "purchase", *params, int(min_searches), float(max_click_rate), int(limit)]


def totals_queries(since: float | None, until: float | None) -> list[tuple[str, list]]:
    """Searches and zero-result searches in the window; events (by their time) carrying a search id,
    and those whose id was not in the log when they were stored."""
    where, params = window(since, until)
    return [
        (f"SELECT COUNT(*), SUM(CASE WHEN n_results = 0 THEN 1 ELSE 0 END) FROM searches WHERE 1 = 1{where}", params),
        (
            "SELECT COUNT(*), SUM(CASE WHEN query IS NULL THEN 1 ELSE 0 END) FROM events "
            f"WHERE search_id IS NOT NULL{where}",
            params,
        ),
    ]


def zero_result_rows(rows: list[tuple]) -> list[dict]:
    return [
        {"query": row[0], "example": row[4], "searches": int(row[1]), "users": int(row[2]), "last": float(row[3])}
        for row in rows
    ]


def low_click_rows(rows: list[tuple]) -> list[dict]:
    out = []
    for row in rows:
        searches, acted, bought = int(row[1]), int(row[2] or 0), int(row[3] or 0)
        out.append(
            {
                "query": row[0],
                "searches": searches,
                "clicked": acted,
                "purchased": bought,
                "click_rate": acted / searches,
                "users": int(row[4]),
                "mean_results": float(row[5]),
                "last": float(row[6]),
            }
        )
    return out
