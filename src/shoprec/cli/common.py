"""Helpers shared by the sub-commands: loading data, parsing lists and settings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError

DEMO = "demo"


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="dataset path (folder, file) or 'demo' for the generated demo shop")
    parser.add_argument("--format", default="auto", help="input format (see 'shoprec datasets formats'); default: auto")
    parser.add_argument("--seed", type=int, default=7, help="seed for the demo shop (default: 7)")
    parser.add_argument(
        "--sheet",
        default=None,
        help="read only this sheet of an Online Retail workbook, e.g. 'Year 2010-2011' (default: every sheet)",
    )


def load_data(args: argparse.Namespace) -> Dataset:
    """The dataset named on the command line, with its ingest report printed."""
    if args.data == DEMO:
        from shoprec.data.demo import generate_demo_shop

        dataset = generate_demo_shop(seed=args.seed).to_dataset()
    else:
        from shoprec.data.adapters import load_dataset

        if not Path(args.data).exists():
            raise ShoprecError(f"{args.data}: no such file or folder. Give a dataset path or 'demo'")
        options = {"sheet": args.sheet} if getattr(args, "sheet", None) else {}
        dataset = load_dataset(args.data, fmt=args.format, **options)
    print(f"loaded {dataset!r}")
    for line in dataset.report.lines():
        print(f"  {line}")
    return dataset


def parse_list(text: str, kind: type = str, what: str = "value") -> list:
    """``"a,b , c"`` -> ``["a", "b", "c"]`` (converted with ``kind``)."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(kind(part))
        except ValueError:
            raise ShoprecError(f"'{part}' is not a valid {what} in '{text}'") from None
    if not out:
        raise ShoprecError(f"no {what} given in '{text}'")
    return out


def parse_settings(pairs: list[str] | None) -> dict[str, dict[str, Any]]:
    """``["ease.reg=300", "als.embedding_size=64"]`` -> ``{"ease": {"reg": 300}, "als": {...}}``.

    Values are read as JSON when they parse (numbers, true/false, null), else kept as strings.
    """
    settings: dict[str, dict[str, Any]] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        model, dot, field = key.partition(".")
        if not sep or not dot or not model or not field:
            raise ShoprecError(f"--set '{pair}': write MODEL.SETTING=VALUE, for example ease.reg=300")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        settings.setdefault(model.strip(), {})[field.strip()] = value
    return settings
