"""Metrics as pure functions of (recommendations, truth).

``recs`` is an (n_users, k) int array of item indices, best first, -1 = padding; ``truth`` a CSR
matrix with one row per row of ``recs``. Per-user metrics return one float per row.
"""

from shoprec.eval.metrics.accuracy import accuracy_metrics, f1, hit_rate, mrr, ndcg, precision, recall
from shoprec.eval.metrics.coverage import catalog_coverage
from shoprec.eval.metrics.diversity import intra_list_diversity
from shoprec.eval.metrics.hits import PAD, hit_matrix, relevant_counts
from shoprec.eval.metrics.popularity import item_popularity, long_tail_share, novelty, popularity_share, tail_items

__all__ = [
    "PAD",
    "accuracy_metrics",
    "catalog_coverage",
    "f1",
    "hit_matrix",
    "hit_rate",
    "intra_list_diversity",
    "item_popularity",
    "long_tail_share",
    "mrr",
    "ndcg",
    "novelty",
    "popularity_share",
    "precision",
    "recall",
    "relevant_counts",
    "tail_items",
]
