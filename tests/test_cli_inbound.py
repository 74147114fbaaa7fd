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

    listed = json.loads(_run(config, "inbound", "list", "--format", "json").output)
    assert [(r["id"], r["state"], r["ticket"]) for r in listed] == [(1, "quarantined", None)]
    assert "costumer" in listed[0]["reason"]
    shown = _run(config, "inbound", "show", "1").output
    assert "Inbound #1: quarantined" in shown
    assert "Subject: Printer is on fire" in shown
    assert "Traceback" in shown
    assert "decided route: suggestion@example.com → type suggestion" in shown
    assert _run(config, "inbound", "show", "1", "--raw").output.startswith("From: Bob")

    still = _run(config, "inbound", "retry", "1").output
    assert "inbound 1: quarantined" in still

    (tmp_path / "templates" / "customer" / "auto_reply.txt.j2").write_text(
        "Hello {{ customer.name }}"
    )
    fixed = _run(config, "inbound", "retry", "--all").output
    assert "inbound 1: accepted, ticket" in fixed
    listed = json.loads(_run(config, "inbound", "list", "--format", "json").output)
    assert listed[0]["state"] == "processed"
    assert listed[0]["ticket"] is not None
    assert _run(config, "ticket", "show", str(listed[0]["ticket"])).exit_code == 0


def test_discard_gives_up_on_a_quarantined_message(tmp_path: Path, database_url: str) -> None:
    config = _setup(tmp_path, database_url, "{{ nope }}")
    eml = tmp_path / "m.eml"
    eml.write_bytes(build_message().as_bytes())
    _run(config, "inject", str(eml))
    assert "inbound 1: discarded" in _run(config, "inbound", "discard", "1").output
    again = _run(config, "inbound", "discard", "1").output
    assert "not quarantined; left alone" in again
    listed = json.loads(
        _run(config, "inbound", "list", "--state", "discarded", "--format", "json").output
    )
    assert [r["reason"] for r in listed] == ["discarded by an administrator"]
    missing = CliRunner().invoke(cli, ["--config", str(config), "inbound", "retry", "1"])
    assert missing.exit_code == 1
    assert "no quarantined inbound message 1" in missing.output
