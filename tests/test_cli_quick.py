"""A quick command line: `mailflow --help` imports no library of the daemon's, a read-only
command none it does not need (a schema already current costs no Alembic), `--version`
answers, and every command and subcommand says in one line what it does. The time it takes
is measured in bench/cli.py, not here."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from click.testing import CliRunner

import mailflow.cli
from mailflow.cli import cli

# What the daemon needs and a quick command does not: the database layer, the configuration
# models, templates, the mail servers and clients, the scheduler, logging.
HEAVY = ("sqlalchemy", "pydantic", "alembic", "jinja2", "aiosmtpd", "aiohttp", "structlog")
# What a list needs beyond SQLAlchemy and the configuration.
NOT_FOR_A_LIST = ("alembic", "jinja2", "aiosmtpd", "aiohttp", "aiosmtplib", "apscheduler")


def _imported_by(*args: str) -> set[str]:
    """The top-level packages imported by `mailflow ARGS` in a fresh interpreter."""
    probe = (
        "import sys\n"
        "from mailflow.cli import main\n"
        f"sys.argv = ['mailflow', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "finally:\n"
        "    sys.stdout.flush()\n"
        "    print('\\n' + ' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in done.stderr.splitlines()[-1].split()}


def test_help_imports_nothing_heavy() -> None:
    assert _imported_by("--help") & set(HEAVY) == set()


def test_a_list_imports_only_what_it_needs(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "mailflow.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    imported = _imported_by("--config", str(config), "tickets", "--view", "all")
    assert imported & set(NOT_FOR_A_LIST) == set()


def test_version_is_the_packages() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"mailflow {importlib.metadata.version('mailflow')}\n"


def _walk(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        found.append((f"{ctx.command_path} {name}", command))
        if isinstance(command, click.Group):
            with click.Context(command, info_name=name, parent=ctx) as sub:
                found += _walk(command, sub)
    return found


def test_every_command_and_subcommand_says_in_one_line_what_it_does() -> None:
    with click.Context(cli, info_name="mailflow") as ctx:
        commands = _walk(cli, ctx)
    table = mailflow.cli.COMMANDS  # the one-line summaries `mailflow --help` shows
    assert len(commands) > len(table)
    for path, command in commands:
        summary = command.get_short_help_str(limit=200)
        assert summary, f"{path} has no description"
        assert "\n" not in summary, path
    assert all(entry.summary and "\n" not in entry.summary for entry in table.values())


LISTS = [
    ["tickets"],
    ["agent", "list"],
    ["team", "list"],
    ["group", "list"],
    ["usergroup", "list"],
    ["approvals"],
    ["activity", "list"],
    ["attachment", "list", "1"],
    ["inbound", "list"],
    ["report", "time", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "agent"],
    ["rules", "list"],
]


@pytest.mark.parametrize("args", LISTS, ids=[" ".join(a[:2]) for a in LISTS])
def test_every_list_speaks_table_json_and_csv(
    args: list[str], tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "mailflow.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    outputs = {}
    for fmt in ("table", "json", "csv"):
        result = CliRunner().invoke(cli, ["--config", str(config), *args, "--format", fmt])
        assert result.exit_code == 0, result.output
        outputs[fmt] = result.stdout
    assert isinstance(json.loads(outputs["json"]), list)
    header = outputs["csv"].splitlines()[0]
    assert outputs["table"].splitlines()[0].split() == [c.upper() for c in header.split(",")]


def test_the_newest_migration_is_found_without_alembic(tmp_path: Path) -> None:
    from mailflow.db import schema_version

    migrations = Path(schema_version.__file__).parent / "migrations"
    alembic = AlembicConfig()
    alembic.set_main_option("script_location", str(migrations))
    assert schema_version.head() == ScriptDirectory.from_config(alembic).get_current_head()

    one = 'revision = "0001"\ndown_revision = None\n'
    two = 'revision: str = "0002_x"\ndown_revision: str | None = "0001"\n'
    (tmp_path / "0001.py").write_text(one)
    (tmp_path / "0002.py").write_text(two)
    assert schema_version.head(tmp_path) == "0002_x"
    (tmp_path / "0003.py").write_text('revision = "0002_y"\ndown_revision = "0001"\n')
    assert schema_version.head(tmp_path) is None  # two heads: Alembic decides
