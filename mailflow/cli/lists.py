"""What every list command shares: --limit (a page, 50 by default), --after (the cursor
that the previous page printed) and --format; rows printed as the database streams them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from mailflow.cli.common import Config, F, database, run
from mailflow.cli.output import Printer, format_option
from mailflow.db.paging import AnyRow, AnySelect, BadCursor, Keyset, Page

LIMIT = 50


def list_options(command: F) -> F:
    """--format, --limit and --after, in that order on the command's help."""
    command = click.option(
        "--after",
        metavar="CURSOR",
        help="Start after this row: the cursor the previous page ended with.",
    )(command)
    command = click.option(
        "--limit",
        type=click.IntRange(min=0),
        default=LIMIT,
        show_default=True,
        help="At most this many rows; 0 for all of them (streamed).",
    )(command)
    return format_option(command)


def mapping(row: AnyRow) -> Mapping[str, Any]:
    """A row as it is, its columns by name."""
    return dict(row._mapping)


def print_page(
    config: Config,
    query: AnySelect,
    keyset: Keyset,
    row: Callable[[AnyRow], object],
    columns: Sequence[str],
    *,
    fmt: str,
    limit: int,
    after: str | None,
) -> None:
    """One page of `query` in `keyset` order, each row printed as it arrives; then, if more
    follow, how to ask for them (on standard error, so JSON and CSV stay clean)."""
    page = Page(keyset, limit or None, after)
    printer = Printer(fmt, columns)

    async def stream() -> None:
        async with database(config) as db, db.reading() as session:
            async for found in page.rows(session, query):
                printer.add(row(found))

    try:
        run(stream())
    except BadCursor as exc:
        raise click.BadParameter(str(exc), param_hint="--after") from None
    printer.close()
    if page.after is not None:
        click.echo(f"mailflow: more after these {printer.count}: --after {page.after}", err=True)
