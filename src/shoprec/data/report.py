"""What ingestion kept, dropped and assumed: nothing is dropped without being counted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class IngestReport:
    """Counts of rows read, kept and dropped (by table and reason), plus notes on assumptions."""

    rows_read: dict[str, int] = field(default_factory=dict)
    rows_kept: dict[str, int] = field(default_factory=dict)
    dropped: Counter = field(default_factory=Counter)
    """``(table, reason) -> rows`` for rows that could not be used."""
    notes: list[str] = field(default_factory=list)

    def drop(self, table: str, reason: str, count: int) -> None:
        """Record ``count`` rows of ``table`` dropped for ``reason`` (zero counts are ignored)."""
        if count:
            self.dropped[(table, reason)] += int(count)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def dropped_total(self, table: str | None = None) -> int:
        return sum(n for (t, _), n in self.dropped.items() if table is None or t == table)

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        out = []
        for table, n in self.rows_read.items():
            kept = self.rows_kept.get(table, n)
            out.append(f"{table}: {n:,} rows read, {kept:,} kept")
            for (t, reason), count in sorted(self.dropped.items()):
                if t == table:
                    out.append(f"  dropped {count:,}: {reason}")
        out.extend(f"note: {n}" for n in self.notes)
        return out

    def to_dict(self) -> dict:
        return {
            "rows_read": dict(self.rows_read),
            "rows_kept": dict(self.rows_kept),
            "dropped": [{"table": t, "reason": r, "rows": n} for (t, r), n in sorted(self.dropped.items())],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict) -> IngestReport:
        report = cls(rows_read=dict(data.get("rows_read", {})), rows_kept=dict(data.get("rows_kept", {})))
        for d in data.get("dropped", []):
            report.drop(d["table"], d["reason"], d["rows"])
        report.notes.extend(data.get("notes", []))
        return report
