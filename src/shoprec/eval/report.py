"""Human-readable views of an :class:`~shoprec.eval.runner.EvalResult`: a table and a chart.

>>> print(format_table(result, fmt="markdown"))     # doctest: +SKIP
>>> write_report(result, "runs/beauty")              # doctest: +SKIP
{'json': PosixPath('runs/beauty/report.json'), 'markdown': ..., 'png': ...}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shoprec.eval.runner import EvalResult

DEFAULT_METRICS = ("ndcg@10", "hr@10", "recall@20", "mrr@10", "coverage@10")
CHART_FAMILIES = ("ndcg", "hr", "recall", "mrr")
"""Metric families drawn in ``report.png``, one panel each, bars per model across K."""


def title(result: EvalResult) -> str:
    """``"beauty: leave-last-out (test, 22,332 users)"``."""
    protocol = result.protocol + (f"/{result.variant}" if result.variant else "")
    users = result.split_info.get("users_evaluated")
    count = f", {users:,} users" if isinstance(users, int) else ""
    return f"{result.dataset}: {protocol} ({result.stage}{count})"


def format_table(result: EvalResult, metrics: Sequence[str] = DEFAULT_METRICS, fmt: str = "text") -> str:
    """One row per model: the chosen metrics, then fit and recommend seconds.

    ``fmt="markdown"`` gives a GitHub table with the highest value of each metric in bold; ``"text"``
    aligned columns for a terminal. A metric a model lacks shows as ``-``.
    """
    if fmt not in ("text", "markdown"):
        raise ValueError(f"fmt must be 'text' or 'markdown', not {fmt!r}")
    header = ["model", *metrics, "fit s", "recommend s"]
    best = {}
    for m in metrics:
        values = _values(result, m)
        best[m] = None if np.isnan(values).all() else float(np.nanmax(values))
    rows = []
    for name, r in result.models.items():
        cells = [name]
        for m in metrics:
            value = r.metrics.get(m, math.nan)
            text = "-" if math.isnan(value) else f"{value:.4f}"
            cells.append(f"**{text}**" if fmt == "markdown" and value == best[m] and len(result.models) > 1 else text)
        rows.append([*cells, f"{r.fit_seconds:.2f}", f"{r.recommend_seconds:.2f}"])
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    return _align([header, *rows])


def write_report(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json`` (:meth:`EvalResult.to_dict`), ``report.md`` (table and split counts)
    and ``report.png`` (bar chart) into ``out_dir``; returns ``{"json", "markdown", "png"}`` paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md", "png": out / "report.png"}
    paths["json"].write_text(json.dumps(result.to_dict(), indent=2, allow_nan=True) + "\n")
    paths["markdown"].write_text(_markdown(result))
    plot(result, paths["png"])
    return paths


def plot(result: EvalResult, path: str | Path, families: Sequence[str] = CHART_FAMILIES) -> Path:
    """Grouped bar chart: one panel per metric family, K on the x axis, one bar per model (with
    its 95% interval). Uses the Agg canvas directly, so no display or pyplot state is involved."""
    from matplotlib.figure import Figure

    families = [f for f in families if any(f"{f}@{k}" in r.metrics for r in result.models.values() for k in result.ks)]
    families = families or ["coverage"]
    names = list(result.models)
    fig = Figure(figsize=(3.6 * len(families) + 0.8, 4.2), layout="constrained")
    axes = fig.subplots(1, len(families), squeeze=False)[0]
    x = np.arange(len(result.ks))
    width = 0.8 / max(1, len(names))
    for ax, family in zip(axes, families, strict=True):
        for j, name in enumerate(names):
            r = result.models[name]
            keys = [f"{family}@{k}" for k in result.ks]
            heights = np.array([r.metrics.get(key, math.nan) for key in keys])
            low = np.array([r.ci95.get(key, [h, h])[0] for key, h in zip(keys, heights, strict=True)])
            errors = np.nan_to_num(heights - low)
            ax.bar(
                x + (j - (len(names) - 1) / 2) * width,
                np.nan_to_num(heights),
                width,
                yerr=errors,
                capsize=2,
                label=name,
                color=f"C{j % 10}",
            )
        ax.set_xticks(x, [f"K={k}" for k in result.ks])
        ax.set_title(family.upper() if len(family) <= 4 else family.capitalize())
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(names), 6))
    fig.suptitle(title(result))
    fig.savefig(path, dpi=120)
    return Path(path)


def _align(rows: list[list[str]]) -> str:
    """Plain-text table: first column left-aligned, numbers right-aligned, a rule under the header."""
    widths = [max(len(c) for c in col) for col in zip(*rows, strict=True)]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _values(result: EvalResult, metric: str) -> np.ndarray:
    return np.array([r.metrics.get(metric, math.nan) for r in result.models.values()], dtype=np.float64)


def _markdown(result: EvalResult) -> str:
    """The report page: title, table, split counts."""
    ks = result.ks or [10]
    k = 10 if 10 in ks else ks[len(ks) // 2]
    metrics = [
        m
        for m in (
            f"ndcg@{k}",
            f"hr@{k}",
            f"recall@{max(ks)}",
            f"mrr@{k}",
            f"coverage@{k}",
            f"novelty@{k}",
            f"longtail@{k}",
            f"diversity@{k}",
        )
        if any(m in r.metrics for r in result.models.values())
    ]
    lines = [f"# {title(result)}", "", format_table(result, metrics, fmt="markdown"), "", "## Split", ""]
    lines += [f"- {key}: {value}" for key, value in result.split_info.items()]
    lines += ["", "Intervals (95%, normal approximation) are in report.json under `ci95`.", ""]
    return "\n".join(lines)
