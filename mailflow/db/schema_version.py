"""Whether a database already has the newest migration, told without loading Alembic: for
a quick command, Alembic's import and script scan cost more than the command's own work."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mailflow.db.session import Database

VERSIONS = Path(__file__).parent / "migrations" / "versions"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+)$", re.MULTILINE)


def head(versions: Path = VERSIONS) -> str | None:
    """The one revision that no other revises, read from the files' `revision =` and
    `down_revision =` lines; None when that is not plain, and Alembic should decide."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        revised.update([down] if isinstance(down, str) else down or ())
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


async def is_current(db: Database) -> bool:
    """True when the database records exactly the newest revision; False when it does not,
    or cannot say (no such table, no database yet), so that migrating decides."""
    newest = head()
    if newest is None or _no_sqlite_file(db):
        return False
    try:
        async with db.reading() as session:
            found = await session.execute(text("SELECT version_num FROM alembic_version"))
            return list(found.scalars()) == [newest]
    except (DBAPIError, OSError):
        return False


def _no_sqlite_file(db: Database) -> bool:
    """No SQLite file yet, or a directory in its place: not even worth a connection."""
    file = db.url.database if db.is_sqlite else None
    return bool(file) and file != ":memory:" and not Path(str(file)).is_file()
