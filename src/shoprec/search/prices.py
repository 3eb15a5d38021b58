"""Price bounds written in a query, English and Chinese: "under 50", "between 20 and 40", "50元以下", "20到40元".

Each pattern gives a bound and whether it includes its number: "under", "below", "less than", "over",
"above", "more than", "低于", "高于", "超过" exclude it; "up to", "at most", "at least", "from", "以下",
"以内", "以上", "不超过", "至少" and every range ("20-40", "between 20 and 40", "20到40元") include it.
A range written as two bare numbers ("20-40") counts as a price only when no unit follows it
("4-6 mm" is a size). Currency marks ($, ¥, 元, 块, usd, dollars) are optional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUM = r"(\d+(?:\.\d+)?)"
CUR = r"(?:\$|¥|￥|usd\s*|rmb\s*)?"
UNIT = r"(?:\s*(?:元|块钱|块|dollars?\b|usd\b|rmb\b|bucks\b))?"
SIZE_UNIT = (
    r"(?!\s*(?:mm|cm|m|ml|l|kg|g|lb|lbs|oz|inch|in|ft|pcs|pack|pieces?|x|%|\"|'"
    r"|寸|厘米|毫米|米|克|千克|升|件|个|只|装)(?![a-z]))"
)


@dataclass(frozen=True)
class Bound:
    """One side of a price range: ``value`` and whether a price equal to it passes."""

    value: float
    inclusive: bool = True

    def __str__(self) -> str:
        return f"{self.value:g}"


_RANGES = [
    re.compile(rf"between\s+{CUR}{NUM}{UNIT}\s+and\s+{CUR}{NUM}{UNIT}"),
    re.compile(rf"(?<![\w.])(?:from\s+)?{CUR}{NUM}\s*(?:元|块)?\s*(?:-|–|~|～|到|至|to)\s*{CUR}{NUM}{SIZE_UNIT}{UNIT}"),
]
_MAX = [
    (re.compile(rf"(?:under|below|less\s+than|cheaper\s+than|<)\s*{CUR}{NUM}{UNIT}"), False),
    (re.compile(rf"(?:up\s+to|at\s+most|no\s+more\s+than|max(?:imum)?|<=|≤)\s*{CUR}{NUM}{UNIT}"), True),
    (re.compile(rf"(?:低于|少于|小于|便宜于)\s*{CUR}{NUM}{UNIT}"), False),
    (re.compile(rf"(?:不超过|不高于|最多|最高)\s*{CUR}{NUM}{UNIT}"), True),
    (re.compile(rf"{CUR}{NUM}{UNIT}\s*(?:以下|以内|之内|之下)"), True),
]
_MIN = [
    (re.compile(rf"(?:over|above|more\s+than|>)\s*{CUR}{NUM}{UNIT}"), False),
    (re.compile(rf"(?:at\s+least|min(?:imum)?|from|>=|≥)\s*{CUR}{NUM}{UNIT}"), True),
    (re.compile(rf"(?:高于|超过|大于|多于)\s*{CUR}{NUM}{UNIT}"), False),
    (re.compile(rf"(?:不低于|至少|最少|最低)\s*{CUR}{NUM}{UNIT}"), True),
    (re.compile(rf"{CUR}{NUM}{UNIT}\s*(?:以上|之上)"), True),
]


@dataclass(frozen=True)
class PriceFound:
    """Bounds read from a text and the text with their phrases cut out."""

    low: Bound | None
    high: Bound | None
    rest: str


def _tighter_high(a: Bound | None, b: Bound) -> Bound:
    if a is None or b.value < a.value or (b.value == a.value and not b.inclusive):
        return b
    return a


def _tighter_low(a: Bound | None, b: Bound) -> Bound:
    if a is None or b.value > a.value or (b.value == a.value and not b.inclusive):
        return b
    return a


def extract_prices(folded: str) -> PriceFound:
    """Price bounds in an NFKC, case-folded ``folded`` text; several bounds of one side keep the tighter.

    >>> extract_prices("mug under $50").high
    Bound(value=50.0, inclusive=False)
    """
    low: Bound | None = None
    high: Bound | None = None
    text = folded
    for pattern in _RANGES:
        for match in pattern.finditer(text):
            a, b = sorted((float(match.group(1)), float(match.group(2))))
            low, high = _tighter_low(low, Bound(a)), _tighter_high(high, Bound(b))
        text = pattern.sub(" ", text)
    for pattern, inclusive in _MAX:
        for match in pattern.finditer(text):
            high = _tighter_high(high, Bound(float(match.group(1)), inclusive))
        text = pattern.sub(" ", text)
    for pattern, inclusive in _MIN:
        for match in pattern.finditer(text):
            low = _tighter_low(low, Bound(float(match.group(1)), inclusive))
        text = pattern.sub(" ", text)
    return PriceFound(low, high, text)
