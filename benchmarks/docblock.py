"""Rewrite one marked block of docs/benchmarks.md, so each benchmark script owns its tables."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_block(name: str, text: str, doc: Path = DOC) -> None:
    """Replace what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` with ``text``;
    the markers are appended at the end of the file when missing."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    body = doc.read_text()
    if start not in body:
        body += f"\n{start}\n{end}\n"
    head, rest = body.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{text.rstrip()}\n{end}{tail}")
