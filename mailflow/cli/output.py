"""Rows printed as a table, JSON or CSV, as they come: a long list is never held whole."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

import click

FORMATS = ("table", "json", "csv")
format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True
)
# A table's column widths are taken from its first rows; later rows keep them.
TABLE_CHUNK = 500


def record(row: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    return dict(row)


class Printer:
    """Prints records one by one in a format; `close()` ends the output."""

    def __init__(self, fmt: str, columns: Sequence[str]) -> None:
        self.fmt, self.columns = fmt, list(columns)
        self.count = 0
        self._pending: list[dict[str, Any]] = []
        self._widths: list[int] | None = None

    def add(self, row: Any) -> None:
        values = record(row)
        if self.fmt == "json":
            item = textwrap.indent(
                json.dumps(values, indent=2, default=str, ensure_ascii=False), "  "
            )
            click.echo(("[\n" if not self.count else ",\n") + item, nl=False)
        elif self.fmt == "csv":
            if not self.count:
                click.echo(_csv_line(self.columns))
            click.echo(_csv_line([values.get(c) for c in self.columns]))
        else:
            self._pending.append(values)
            if len(self._pending) == TABLE_CHUNK:
                self._flush()
        self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            click.echo("\n]" if self.count else "[]")
        elif self.fmt == "csv":
            if not self.count:
                click.echo(_csv_line(self.columns))
        else:
            self._flush(final=True)

    def _flush(self, final: bool = False) -> None:
        cells = [[_cell(r.get(c)) for c in self.columns] for r in self._pending]
        lines = []
        if self._widths is None:
            self._widths = [
                max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(self.columns)
            ]
            lines.append(_line([c.upper() for c in self.columns], self._widths))
        lines += [_line(row, self._widths) for row in cells]
        if lines:
            click.echo("\n".join(lines))
        self._pending = []


def render(rows: Iterable[Any], fmt: str, columns: Sequence[str]) -> None:
    """Print rows that are already at hand (a page, a report)."""
    printer = Printer(fmt, columns)
    for row in rows:
        printer.add(row)
    printer.close()


def _csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def _cell(value: Any, max_width: int = 48) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip()
