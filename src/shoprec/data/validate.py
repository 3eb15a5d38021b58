"""Turn raw tables into clean, typed ones, or say exactly what is wrong and where.

Problems a user must fix (a missing column, an unparseable time, a negative price, a duplicate
item id, an empty table) raise :class:`DataError` naming the file, row and column. Rows that are
merely unusable (no user id, an unknown item, an unknown event type) are dropped and counted in
the :class:`IngestReport`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from shoprec.data.report import IngestReport
from shoprec.data.schema import EVENT_TYPES, ITEMS, TableSpec
from shoprec.errors import DataError

TIME_FIX = "Write times as ISO 8601 (2024-03-01 or 2024-03-01T12:30:00) or as unix seconds"


def _where(source: str | None, spec: TableSpec) -> str:
    return source or spec.name


def _first_bad_row(mask: np.ndarray | pd.Series) -> int:
    """1-based data row of the first True in ``mask``."""
    return int(np.flatnonzero(np.asarray(mask))[0]) + 1


def require_rows(frame: pd.DataFrame, spec: TableSpec, source: str | None) -> None:
    if len(frame) == 0:
        raise DataError(
            "the table has no rows",
            file=_where(source, spec),
            fix=f"Add at least one row with columns {', '.join(spec.required)}",
        )


def require_columns(frame: pd.DataFrame, spec: TableSpec, source: str | None) -> None:
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns[:12])) or "none"
        raise DataError(
            f"missing required column '{missing[0]}' (columns found: {found})",
            file=_where(source, spec),
            column=missing[0],
            fix=f"The {spec.name} table needs columns {', '.join(spec.required)}; rename or add it",
        )


def clean_ids(values: pd.Series) -> pd.Series:
    """Ids as strings; floats that hold integers (``17850.0``) become ``"17850"``; missing -> NA."""
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if (whole == np.floor(whole)).all():
            values = values.astype("Int64")
    out = values.astype("string").str.strip()
    return out.mask(out == "", pd.NA)


def parse_float(values: pd.Series, column: str, spec: TableSpec, source: str | None) -> pd.Series:
    """Numbers; a non-empty value that is not a number is an error naming its row."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    raw = values.astype("string").str.strip()
    parsed = pd.to_numeric(raw, errors="coerce")
    bad = parsed.isna() & raw.notna() & (raw != "")
    if bad.any():
        row = _first_bad_row(bad)
        raise DataError(
            f"'{raw.iloc[row - 1]}' is not a number",
            file=_where(source, spec),
            row=row,
            column=column,
            fix="Write plain numbers such as 12.5 (no currency symbols), or leave the cell empty",
        )
    return parsed.astype("float64")


def parse_time(values: pd.Series, column: str, spec: TableSpec, source: str | None) -> pd.Series:
    """Unix seconds as nullable Int64. Accepts numbers (unix seconds), datetimes and ISO strings."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values, utc=True)
    elif pd.api.types.is_numeric_dtype(values):
        return values.round().astype("Int64")
    else:
        raw = values.astype("string").str.strip()
        raw = raw.mask(raw == "", pd.NA)
        numeric = pd.to_numeric(raw, errors="coerce")
        if raw.notna().any() and numeric[raw.notna()].notna().all():
            return numeric.round().astype("Int64")
        stamps = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
        bad = stamps.isna() & raw.notna()
        if bad.any():
            row = _first_bad_row(bad)
            raise DataError(
                f"cannot read '{raw.iloc[row - 1]}' as a time",
                file=_where(source, spec),
                row=row,
                column=column,
                fix=TIME_FIX,
            )
    out = pd.Series(pd.NA, index=values.index, dtype="Int64")
    ok = stamps.notna()
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    out[ok] = ((stamps[ok] - epoch) // pd.Timedelta(seconds=1)).astype("int64")
    return out


def _line_offset(source: str | None) -> int | None:
    return 1 if source and source.lower().endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")) else None


def _with_line(err: DataError, source: str | None) -> DataError:
    offset = _line_offset(source)
    if offset and err.row is not None:
        return DataError(err.problem, file=err.file, row=err.row, column=err.column, fix=err.fix, line_offset=offset)
    return err


def clean_table(frame: pd.DataFrame, spec: TableSpec, source: str | None, report: IngestReport) -> pd.DataFrame:
    """Check and type every known column of ``frame``; unknown columns are returned untouched."""
    try:
        require_rows(frame, spec, source)
        require_columns(frame, spec, source)
        out = frame.reset_index(drop=True).copy()
        for column in spec.columns:
            if column not in out.columns:
                continue
            kind = spec.kinds[column]
            if kind == "id":
                out[column] = clean_ids(out[column])
            elif kind == "text":
                out[column] = out[column].astype("string").fillna("").str.strip()
            elif kind == "float":
                out[column] = parse_float(out[column], column, spec, source)
            elif kind == "time":
                out[column] = parse_time(out[column], column, spec, source)
            elif kind == "event":
                out[column] = out[column].astype("string").str.strip().str.lower()
    except DataError as err:
        raise _with_line(err, source) from None
    report.rows_read.setdefault(spec.name, len(frame))
    return out


def clean_items(frame: pd.DataFrame, source: str | None, report: IngestReport) -> pd.DataFrame:
    """The catalog with every schema column present; extra columns folded into ``attributes``."""
    items = clean_table(frame, ITEMS, source, report)
    try:
        missing = items["item_id"].isna()
        if missing.any():
            raise DataError(
                "item_id is empty",
                file=_where(source, ITEMS),
                row=_first_bad_row(missing),
                column="item_id",
                fix="Every catalog row needs an item id",
            )
        dup = items["item_id"].duplicated()
        if dup.any():
            row = _first_bad_row(dup)
            first = int(np.flatnonzero(items["item_id"] == items["item_id"].iloc[row - 1])[0]) + 1
            raise DataError(
                f"duplicate item id '{items['item_id'].iloc[row - 1]}' (first seen in row {first})",
                file=_where(source, ITEMS),
                row=row,
                column="item_id",
                fix="Keep one row per item: merge or remove the repeated rows",
            )
        if "price" in items.columns:
            negative = items["price"] < 0
            if negative.any():
                row = _first_bad_row(negative)
                raise DataError(
                    f"price {items['price'].iloc[row - 1]} is negative",
                    file=_where(source, ITEMS),
                    row=row,
                    column="price",
                    fix="Prices must be zero or more; leave the cell empty when unknown",
                )
    except DataError as err:
        raise _with_line(err, source) from None
    extra = [c for c in items.columns if c not in ITEMS.columns and c != "attributes"]
    items["attributes"] = _attributes(items, extra)
    for column in ITEMS.columns:
        if column not in items.columns:
            items[column] = _empty_column(ITEMS.kinds[column], len(items))
    report.rows_kept["items"] = len(items)
    return items[list(ITEMS.columns) + ["attributes"]]


def _attributes(items: pd.DataFrame, extra: list[str]) -> pd.Series:
    base = items["attributes"].astype("string").fillna("{}") if "attributes" in items.columns else None
    if not extra and base is not None:
        return base
    records = items[extra].astype(object).where(items[extra].notna(), None).to_dict("records") if extra else None
    out = []
    for i in range(len(items)):
        attrs = json.loads(base.iloc[i]) if base is not None else {}
        if records is not None:
            attrs.update({k: (v.item() if hasattr(v, "item") else v) for k, v in records[i].items() if v is not None})
        out.append(json.dumps(attrs, ensure_ascii=False, sort_keys=True, default=str))
    return pd.Series(out, index=items.index, dtype="string")


def _empty_column(kind: str, n: int) -> pd.Series:
    if kind == "float":
        return pd.Series(np.full(n, np.nan), dtype="float64")
    if kind == "time":
        return pd.Series(pd.NA, index=range(n), dtype="Int64")
    return pd.Series([""] * n, dtype="string")


def drop_unusable(frame: pd.DataFrame, table: str, reasons: dict[str, pd.Series], report: IngestReport) -> pd.DataFrame:
    """Drop rows flagged by each named reason (first reason wins) and count them."""
    keep = pd.Series(True, index=frame.index)
    for reason, mask in reasons.items():
        hit = mask & keep
        report.drop(table, reason, int(hit.sum()))
        keep &= ~mask
    return frame[keep]


def check_events(events: pd.Series) -> pd.Series:
    """Mask of rows whose event type is not one of :data:`EVENT_TYPES`."""
    return ~events.isin(EVENT_TYPES)
