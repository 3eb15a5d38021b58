"""Bundle metrics: pure functions of (generated items, true items).

>>> {k: round(v, 3) for k, v in set_scores([1, 2, 3], [2, 3, 4, 5]).items()}
{'precision': 0.667, 'recall': 0.5, 'f1': 0.571}
>>> same_category_mix(["a", "b", "b"], ["b", "a", "b"])
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np


def set_scores(generated: Iterable[int], truth: Iterable[int]) -> dict[str, float]:
    """Precision, recall and F1 of a generated set against the true set (0 where undefined)."""
    gen, true = set(int(i) for i in generated), set(int(i) for i in truth)
    hits = len(gen & true)
    precision = hits / len(gen) if gen else 0.0
    recall = hits / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def same_category_mix(generated: Sequence[str], truth: Sequence[str]) -> bool:
    """True when both bundles hold the same categories the same number of times."""
    return Counter(generated) == Counter(truth)


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over bundles (macro average)."""
    if not rows:
        return {}
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
