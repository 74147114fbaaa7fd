"""The `mailflow` command: init, check, agents, inject, ticket lists and one ticket's record."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailflow.cli import cli
from mailflow.config import load_config
from tests.support import build_message


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n'
        '[instance]\nname = "Example Support"\n'
    )
    return path


def mailflow(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def _eml(tmp_path: Path, name: str, **fields: str) -> Path:
    path = tmp_path / name
    path.write_bytes(build_message(**fields).as_bytes())
    return path


def test_init_writes_a_config_that_check_accepts(tmp_cwd: Path) -> None:
    result = CliRunner().invoke(cli, ["init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_cwd / "mailflow.toml").is_file()
    assert (tmp_cwd / "var" / "mailflow.db").is_file()
    again = CliRunner().invoke(cli, ["init"], catch_exceptions=False)
    assert "exists; keeping it" in again.output
    checked = CliRunner().invoke(cli, ["--config", "mailflow.toml", "check"])
    assert checked.exit_code == 0, checked.output
    shipped = (Path(__file__).parents[1] / "rules" / "default.yaml").read_text()
    assert f"rules: ok ({shipped.count('  - name:')} enabled)" in checked.output


def test_check_after_init_checks_the_file_just_written(
    tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILFLOW_CONFIG", raising=False)
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    checked = CliRunner().invoke(cli, ["check"])
    assert checked.exit_code == 0, checked.output
    assert f"checking {tmp_cwd / 'mailflow.toml'}" in checked.output
    written = tmp_cwd / "mailflow.toml"
    written.write_text(written.read_text().replace("port = 2525", "port = 70000"))
    broken = CliRunner().invoke(cli, ["check"])
    assert broken.exit_code == 78
    assert f"{tmp_cwd / 'mailflow.toml'}: smtp.port:" in broken.output


def test_state_goes_to_systemds_state_directory_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = Path(__file__).parents[1] / "mailflow" / "example.toml"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/mailflow")
    config = load_config(example)
    assert config.path(config.instance.secret_file) == Path("/var/lib/mailflow/secret")
    assert config.database_url == "sqlite+aiosqlite:////var/lib/mailflow/mailflow.db"
    assert config.path(config.outbox.maildir) == Path("/var/lib/mailflow/sent")
    attachments = config.path(config.database.attachment_dir)
    assert attachments == Path("/var/lib/mailflow/attachments")
    assert config.path(config.outbox.journal) == Path("/var/lib/mailflow/outbox-journal")
    own = tmp_path / "mailflow.toml"
    own.write_text('[instance]\nstate_dir = "state"\n[outbox]\nmaildir = "/srv/mail"\n')
    config = load_config(own)
    assert config.path(config.instance.secret_file) == tmp_path / "state" / "secret"
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path / 'state' / 'mailflow.db'}"
    assert config.path(config.outbox.maildir) == Path("/srv/mail")
    monkeypatch.delenv("STATE_DIRECTORY")
    config = load_config(example)
    assert config.path(config.instance.secret_file) == example.parent / "var" / "secret"


def test_check_reports_a_broken_template(tmp_path: Path, config_file: Path) -> None:
    templates = tmp_path / "templates" / "agent"
    templates.mkdir(parents=True)
    (templates / "new_ticket.txt.j2").write_text("{{ ticket.number }")
    config_file.write_text(config_file.read_text() + '[templates]\ndir = "templates"\n')
    result = CliRunner().invoke(cli, ["--config", str(config_file), "check"])
    assert result.exit_code == 78
    assert "template agent/new_ticket.txt.j2" in result.output


def test_agents_are_added_updated_and_listed(config_file: Path) -> None:
    assert (
        "added agent alice@staff.test"
        in mailflow(
            config_file, "agent", "add", "Alice@Staff.test", "--name", "Alice", "--type", "ticket"
        ).output
    )
    assert (
        "updated agent alice@staff.test"
        in mailflow(
            config_file, "agent", "add", "alice@staff.test", "--name", "Alice A.", "--no-notify"
        ).output
    )
    rows = json.loads(mailflow(config_file, "agent", "list", "--format", "json").output)
    assert rows == [
        {
            "email": "alice@staff.test",
            "name": "Alice A.",
            "team": "support",
            "role": "operator",
            "active": True,
            "notify": False,
            "types": "all",
            "groups": "",
        }
    ]
    bad = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config_file),
            "agent",
            "add",
            "bob@x.test",
            "--name",
            "B",
            "--type",
            "nope",
        ],
    )
    assert bad.exit_code == 2
    assert "unknown types ['nope']" in bad.output


def test_inject_then_list_and_show(tmp_path: Path, config_file: Path) -> None:
    first = _eml(tmp_path, "a.eml", subject="Cannot log in", message_id="<a@customer.test>")
    second = _eml(tmp_path, "b.eml", subject="Idea: dark mode", to="suggestion@example.com")
    result = mailflow(config_file, "inject", str(first), str(second))
    assert result.exit_code == 0, result.output
    assert f"{first}: accepted" in result.output
    assert "ticket 2" in result.output

    table = mailflow(config_file, "tickets", "--view", "unassigned").output.splitlines()
    assert table[0].split() == [
        "NUMBER",
        "TYPE",
        "STATUS",
        "PRIORITY",
        "SUBJECT",
        "CUSTOMER",
        "USERGROUP",
        "GROUP",
        "PROJECT",
        "ASSIGNEE",
        "DUE",
        "UPDATED",
    ]
    assert len(table) == 3
    assert "Cannot log in" in "\n".join(table)

    rows = json.loads(mailflow(config_file, "tickets", "--view", "all", "--format", "json").output)
    assert {(r["number"], r["type"], r["status"]) for r in rows} == {
        (1, "ticket", "open"),
        (2, "suggestion", "new"),
    }
    as_csv = mailflow(config_file, "tickets", "--type", "suggestion", "--format", "csv").output
    parsed = list(csv.DictReader(io.StringIO(as_csv)))
    assert [r["subject"] for r in parsed] == ["Idea: dark mode"]
    empty = mailflow(config_file, "tickets", "--view", "agent-waiting").output
    assert [line.split() for line in empty.strip().splitlines()] == [table[0].split()]

    shown = mailflow(config_file, "ticket", "show", "1").output
    assert "Ticket #1: Cannot log in" in shown
    assert "customer Bob Customer <bob@customer.test>" in shown
    assert "Help, my printer is on fire." in shown
    assert "customer/auto_reply → bob@customer.test: pending" in shown
    assert "created" in shown
    assert "rule_fired" in shown
    assert "[decided] route: support@example.com → type ticket" in shown


def test_inject_a_customer_reply_moves_the_ticket(tmp_path: Path, config_file: Path) -> None:
    mailflow(config_file, "inject", str(_eml(tmp_path, "a.eml", message_id="<a@c.test>")))
    reply = _eml(
        tmp_path, "b.eml", subject="Re: [#1] Printer", body="Any news?", in_reply_to="<a@c.test>"
    )
    mailflow(config_file, "inject", str(reply))
    rows = json.loads(
        mailflow(config_file, "tickets", "--view", "agent-waiting", "--format", "json").output
    )
    assert [r["number"] for r in rows] == [1]


def test_show_of_a_missing_ticket_says_so(config_file: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config_file), "ticket", "show", "99"])
    assert result.exit_code == 1
    assert "no ticket 99" in result.output
