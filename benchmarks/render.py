"""Write the baseline tables of docs/benchmarks.md from benchmarks/results/*.json.

    .venv/bin/python benchmarks/render.py

Only the block between ``<!-- baselines:start -->`` and ``<!-- baselines:end -->`` is replaced,
so hand-written sections around it stay.
"""

from __future__ import annotations

import json
from pathlib import Path

from shoprec.eval import EvalResult, format_table

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- baselines:start -->", "<!-- baselines:end -->"
METRICS = ("ndcg@10", "hr@10", "recall@20", "mrr@10", "coverage@10", "longtail@10")
ORDER = (
    "beauty-leave-last-out",
    "beauty-s3rec-leave-last-out",
    "online-retail-temporal-repeat",
    "online-retail-temporal-discovery",
)


def section(record: dict) -> str:
    result = EvalResult.from_dict(record["result"])
    info = record["result"]["split_info"]
    data = record["dataset"]
    lines = [
        f"### {record['title']}: {result.protocol}{'/' + result.variant if result.variant else ''}",
        "",
        f"{data['users']:,} users, {data['items']:,} items, {data['interactions']:,} events; "
        f"{info.get('users_evaluated', 0):,} users evaluated"
        + (f", skipped: {info['users_skipped']}" if info.get("users_skipped") else "")
        + f". Peak RSS of the run so far: {record['peak_rss_mb']:.0f} MB.",
        "",
        format_table(result, metrics=METRICS, fmt="markdown"),
        "",
        "Settings ("
        + ("chosen on the validation target" if record["tuned_on_validation"] else "defaults")
        + "): "
        + "; ".join(f"{m} {json.dumps(s)}" for m, s in record["settings"].items() if s),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    records = {p.stem: json.loads(p.read_text()) for p in RESULTS.glob("*.json") if p.stem != "meta"}
    records = {k: r for k, r in records.items() if "result" in r}  # baseline runs only
    meta = json.loads((RESULTS / "meta.json").read_text())
    keys = [k for k in ORDER if k in records] + sorted(k for k in records if k not in ORDER)
    body = [
        START,
        f"Measured {meta['date']} on {meta['machine']}; whole run {meta['total_seconds'] / 60:.1f} min.",
        f"Command: `{meta['command']}`",
        "",
        *(section(records[k]) for k in keys),
        END,
    ]
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + "\n".join(body) + tail)
    print(f"wrote {len(keys)} tables to {DOC}")


if __name__ == "__main__":
    main()
