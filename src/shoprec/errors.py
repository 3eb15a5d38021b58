"""Errors that reach users: each says what is wrong, where, and what to do."""

from __future__ import annotations


class ShoprecError(Exception):
    """Base class for every error shoprec reports to a user (CLI or API) without a traceback."""


class DataError(ShoprecError):
    """A problem in an input file, pinned to the file, row and column where it was found.

    ``row`` is the 1-based data row (the header is not counted); for CSV files the message also
    gives the line number in the file.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
        line_offset: int | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.row = row
        self.column = column
        self.fix = fix
        where = []
        if file:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}" + (f" (line {row + line_offset})" if line_offset else ""))
        if column:
            where.append(f"column '{column}'")
        text = (", ".join(where) + ": " if where else "") + problem
        if fix:
            text += f". {fix}"
        super().__init__(text)


class ModelError(ShoprecError):
    """A model was used wrongly: not fitted, asked for an impossible k, given bad ids."""


class ConfigError(ShoprecError):
    """A configuration (a pipeline TOML file, rules, a promotion calendar) that cannot work.

    ``where`` names the file and key (``pipeline.toml: rerank.price_range``); ``fix`` says what to do.
    """

    def __init__(self, problem: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.problem, self.where, self.fix = problem, where, fix
        text = (f"{where}: " if where else "") + problem
        if fix:
            text += f". {fix}"
        super().__init__(text)
