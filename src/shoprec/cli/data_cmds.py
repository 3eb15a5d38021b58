"""``shoprec datasets ...``: list formats, download public data, import and describe datasets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shoprec.cli.common import add_data_arguments, load_data


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "datasets",
        help="list formats, download, import and describe datasets",
        description="Work with datasets: public downloads, imports, summaries.",
    )
    sub = parser.add_subparsers(dest="datasets_command", metavar="ACTION")
    sub.required = True

    formats = sub.add_parser("formats", help="list the input formats shoprec reads")
    formats.set_defaults(run=run_formats)

    download = sub.add_parser(
        "download",
        help="download a public dataset (needs internet)",
        description="Download a public dataset into a local folder.",
    )
    download.add_argument("name", help="dataset name: online-retail or online-retail-ii")
    download.add_argument("--dest", default="data", help="folder to download into (default: ./data)")
    download.add_argument("--url", default=None, help="download from this URL instead (http(s):// or file://)")
    download.add_argument("--force", action="store_true", help="download again even if the file exists")
    download.set_defaults(run=run_download)

    describe = sub.add_parser(
        "describe",
        help="validate a dataset and print its summary",
        description="Load, validate and summarise a dataset; print what was dropped and why.",
    )
    add_data_arguments(describe)
    describe.add_argument("--json", action="store_true", help="print the summary as JSON")
    describe.set_defaults(run=run_describe)

    imp = sub.add_parser(
        "import",
        help="validate a dataset and save it as Parquet + JSON schema",
        description="Load and validate a dataset, then save it in shoprec's own format.",
    )
    add_data_arguments(imp)
    imp.add_argument("--out", required=True, help="folder to write the saved dataset to")
    imp.set_defaults(run=run_import)


def run_formats(args: argparse.Namespace) -> int:
    from shoprec.data.adapters import FORMATS
    from shoprec.data.adapters.download import DATASETS
    from shoprec.data.adapters.retail_files import LAYOUTS

    print("input formats (--format):")
    for name, text in FORMATS.items():
        print(f"  {name:<16} {text}")
    print("  online-retail columns, either release:")
    for layout in LAYOUTS:
        print(f"    {layout.describe()}")
    print("downloadable datasets ('shoprec datasets download NAME'):")
    for name, info in DATASETS.items():
        print(f"  {name:<16} {info.get('title', '')} ({info.get('license', '')})")
        print(f"  {'':<16} file {info['file']}: {info.get('size', '')}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from shoprec.data.adapters.download import download

    path = download(args.name, Path(args.dest), url=args.url, force=args.force)
    print(f"downloaded {args.name} to {path}")
    print(f"next: shoprec datasets describe {path}")
    return 0


def run_describe(args: argparse.Namespace) -> int:
    dataset = load_data(args)
    summary = dataset.describe()
    if args.json:
        print(json.dumps({"name": dataset.name, **summary, "report": dataset.report.to_dict()}, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:>18}: {value}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    dataset = load_data(args)
    path = dataset.save(args.out)
    print(f"saved {dataset!r} to {path} (Parquet tables + schema.json)")
    return 0
