"""Rows of values printed as a table, JSON or CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "json", "csv")


def _records(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        dataclasses.asdict(row)
        if dataclasses.is_dataclass(row) and not isinstance(row, type)
        else dict(row)
        for row in rows
    ]


def render(rows: Sequence[Any], fmt: str, columns: Sequence[str]) -> str:
    records = _records(rows)
    if fmt == "json":
        return json.dumps(records, indent=2, default=str, ensure_ascii=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue().rstrip("\n")
    return table(records, columns)


def table(records: list[dict[str, Any]], columns: Sequence[str], max_width: int = 48) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value).replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(r.get(c)) for c in columns] for r in records]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)
