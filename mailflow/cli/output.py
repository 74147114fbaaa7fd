"""Rows printed as a table, JSON or CSV, as they come: a long list is never held whole."""

from __future__ import annotations

import csv
import dataclasses
import functools
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
# Rows are written this many at a time; a table's column widths are taken from the first
# chunk, and later rows keep them.
CHUNK = 500


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(kind))


def record(row: Any) -> dict[str, Any]:
    """A row's values by column name (shallow: dataclasses.asdict copies deeply, and costs
    more than the rest of printing a row)."""
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return {name: getattr(row, name) for name in _field_names(type(row))}
    return dict(row)


class Printer:
    """Prints records one by one in a format; `close()` ends the output."""

    def __init__(self, fmt: str, columns: Sequence[str]) -> None:
        self.fmt, self.columns = fmt, list(columns)
        self.count = 0
        self._pending: list[dict[str, Any]] = []  # a table's rows, until widths are known
        self._out: list[str] = []
        self._widths: list[int] | None = None

    def add(self, row: Any) -> None:
        values = record(row)
        if self.fmt == "json":
            item = json.dumps(values, indent=2, default=str, ensure_ascii=False)
            self._out.append(("[\n" if not self.count else ",\n") + textwrap.indent(item, "  "))
        elif self.fmt == "csv":
            if not self.count:
                self._out.append(_csv_line(self.columns))
            self._out.append(_csv_line([values.get(c) for c in self.columns]))
        else:
            self._pending.append(values)
        self.count += 1
        if self.count % CHUNK == 0:
            self._flush()

    def close(self) -> None:
        if self.fmt == "json":
            self._out.append("\n]\n" if self.count else "[]\n")
        elif self.fmt == "csv" and not self.count:
            self._out.append(_csv_line(self.columns))
        self._flush()

    def _flush(self) -> None:
        """Out with what has gathered; a table is aligned on its first chunk."""
        if self.fmt == "table" and (self._pending or self._widths is None):
            cells = [[_cell(r.get(c)) for c in self.columns] for r in self._pending]
            if self._widths is None:
                self._widths = [
                    max([len(c), *(len(row[i]) for row in cells)])
                    for i, c in enumerate(self.columns)
                ]
                self._out.append(_line([c.upper() for c in self.columns], self._widths))
            self._out += [_line(row, self._widths) for row in cells]
            self._pending = []
        if self._out:
            click.echo("".join(self._out), nl=False)
            self._out = []


def render(rows: Iterable[Any], fmt: str, columns: Sequence[str]) -> None:
    """Print rows that are already at hand (a page, a report)."""
    printer = Printer(fmt, columns)
    for row in rows:
        printer.add(row)
    printer.close()


def _csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _cell(value: Any, max_width: int = 48) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip() + "\n"
