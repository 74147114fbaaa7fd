"""`mailflow inbound`: the quarantine can be listed, read, retried after a fix, discarded."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from mailflow.cli import cli
from tests.support import build_message


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def _setup(tmp_path: Path, database_url: str, template: str) -> Path:
    templates = tmp_path / "templates" / "customer"
    templates.mkdir(parents=True)
    (templates / "auto_reply.txt.j2").write_text(template)
    config = tmp_path / "mailflow.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n'
        '[templates]\ndir = "templates"\n'
    )
    return config


def test_quarantined_message_is_retried_after_the_fix(tmp_path: Path, database_url: str) -> None:
    config = _setup(tmp_path, database_url, "Hello {{ costumer.name }}")  # a typo
    eml = tmp_path / "m.eml"
    eml.write_bytes(build_message(to="suggestion@example.com").as_bytes())
    assert "quarantined" in _run(config, "inject", str(eml)).output

    # Numbers come from the database; a rolled-back attempt may have used one (PostgreSQL).
    listed = json.loads(_run(config, "inbound", "list", "--format", "json").output)
    assert [(r["state"], r["ticket"]) for r in listed] == [("quarantined", None)]
    assert "costumer" in listed[0]["reason"]
    number = str(listed[0]["id"])
    shown = _run(config, "inbound", "show", number).output
    assert f"Inbound #{number}: quarantined" in shown
    assert "Subject: Printer is on fire" in shown
    assert "Traceback" in shown
    assert "decided route: suggestion@example.com → type suggestion" in shown
    assert _run(config, "inbound", "show", number, "--raw").output.startswith("From: Bob")

    still = _run(config, "inbound", "retry", number).output
    assert f"inbound {number}: quarantined" in still

    (tmp_path / "templates" / "customer" / "auto_reply.txt.j2").write_text(
        "Hello {{ customer.name }}"
    )
    fixed = _run(config, "inbound", "retry", "--all").output
    assert f"inbound {number}: accepted, ticket" in fixed
    listed = json.loads(_run(config, "inbound", "list", "--format", "json").output)
    assert listed[0]["state"] == "processed"
    assert listed[0]["ticket"] is not None
    assert _run(config, "ticket", "show", str(listed[0]["ticket"])).exit_code == 0


def test_discard_gives_up_on_a_quarantined_message(tmp_path: Path, database_url: str) -> None:
    config = _setup(tmp_path, database_url, "{{ nope }}")
    eml = tmp_path / "m.eml"
    eml.write_bytes(build_message().as_bytes())
    _run(config, "inject", str(eml))
    number = str(json.loads(_run(config, "inbound", "list", "--format", "json").output)[0]["id"])
    assert f"inbound {number}: discarded" in _run(config, "inbound", "discard", number).output
    again = _run(config, "inbound", "discard", number).output
    assert "not quarantined; left alone" in again
    listed = json.loads(
        _run(config, "inbound", "list", "--state", "discarded", "--format", "json").output
    )
    assert [r["reason"] for r in listed] == ["discarded by an administrator"]
    missing = CliRunner().invoke(cli, ["--config", str(config), "inbound", "retry", number])
    assert missing.exit_code == 1
    assert f"no quarantined inbound message {number}" in missing.output
