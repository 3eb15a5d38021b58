"""Offline evaluation: protocols (splits), metrics, the runner and reports.

>>> from shoprec.eval import evaluate, leave_last_out, write_report   # doctest: +SKIP
>>> split = leave_last_out(dataset)                                   # doctest: +SKIP
>>> result = evaluate({"popularity": create_model("popularity")}, split)  # doctest: +SKIP
>>> write_report(result, "runs/latest")                               # doctest: +SKIP
"""

from shoprec.eval.crosscat import CrossCategorySplit, cross_category_split, evaluate_cross_category
from shoprec.eval.report import format_table, plot, write_report
from shoprec.eval.runner import EvalResult, ModelResult, evaluate, score_recommendations
from shoprec.eval.splits import Split, event_roles, leave_last_out, temporal_split

__all__ = [
    "CrossCategorySplit",
    "cross_category_split",
    "evaluate_cross_category",
    "EvalResult",
    "ModelResult",
    "Split",
    "evaluate",
    "score_recommendations",
    "event_roles",
    "format_table",
    "leave_last_out",
    "plot",
    "temporal_split",
    "write_report",
]
