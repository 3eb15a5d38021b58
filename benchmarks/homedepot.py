"""Home Depot Product Search Relevance (Kaggle 2016) as a product table and graded judgments.

The training file as published (``train.csv.zip``, Latin-1): ``product_uid``, ``product_title``,
``search_term``, ``relevance`` (mean of raters' scores, 1 = irrelevant .. 3 = exactly relevant).
Products are the distinct ``product_uid`` values (54,667), titled by their first row (a few uids carry
two spellings of one title); judgments are (normalised search term, product position, relevance).
Evaluation use only (competition rules): the file is read where it lies and never copied into the
repository.

>>> hd = load_homedepot()                               # doctest: +SKIP
>>> len(hd.table), len(hd.judgments), len(hd.judgments.terms())   # doctest: +SKIP
(54667, 74067, 11793)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shoprec.errors import ShoprecError
from shoprec.search.finetune import Judgments, judgments_from_frame
from shoprec.search.products import Product, ProductTable

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "homedepot-search" / "train.csv.zip"
RELEVANT = 2.5
"""Products judged at least this relevant count as relevant for full-catalogue recall."""


@dataclass
class HomeDepot:
    table: ProductTable
    judgments: Judgments
    rows: int  # rows in the file

    @property
    def titles(self) -> list[str]:
        return [p.title for p in self.table.products]


def load_homedepot(path: str | Path = DEFAULT_PATH) -> HomeDepot:
    """The product table (by product_uid order) and the judgments of ``train.csv.zip``."""
    path = Path(path)
    if not path.is_file():
        raise ShoprecError(
            f"{path}: not found. The Home Depot benchmark reads the competition's train.csv.zip "
            "(see the datasets README); give its location with --data"
        )
    frame = pd.read_csv(path, encoding="latin-1")
    missing = {"product_uid", "product_title", "search_term", "relevance"} - set(frame.columns)
    if missing:
        raise ShoprecError(f"{path}: missing column(s) {', '.join(sorted(missing))}: not the Home Depot train file")
    products = frame.drop_duplicates("product_uid").sort_values("product_uid")
    uids, titles = products["product_uid"].astype(str), products["product_title"].astype(str)
    table = ProductTable(Product(uid, title) for uid, title in zip(uids, titles, strict=True))
    pairs = pd.DataFrame(
        {"query": frame["search_term"], "item_id": frame["product_uid"].astype(str), "relevance": frame["relevance"]}
    )
    return HomeDepot(table, judgments_from_frame(pairs, table, source=str(path)), len(frame))
