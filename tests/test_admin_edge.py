"""What an administrator meets: the configuration file, start-up, the `mailflow` command and
reload. Each mistake should stop with the file, the key and the problem (exit 78), never a
traceback; each command should do what it says and nothing more."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailflow.cli import cli
from mailflow.config import ConfigError, load_config
from tests.dovecot import free_port
from tests.support import build_message

REPO = Path(__file__).parents[1]
_MAILFLOW = [sys.executable, "-c", "from mailflow.cli import main; main()"]


def _write(tmp_path: Path, text: str, name: str = "mailflow.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli, list(args))


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    return _write(tmp_path, f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n')


@pytest.fixture
def sqlite_config_file(tmp_path: Path) -> Path:
    """An SQLite database of its own, on both test runs: these tests read and change the
    file directly, as an administrator with the sqlite3 shell would."""
    path = _write(
        tmp_path,
        '[database]\nurl = "sqlite+aiosqlite:///var/mailflow.db"\n[outbox]\nmaildir = "sent"\n',
    )
    assert _cli("--config", str(path), "db", "upgrade").exit_code == 0
    return path


def _no_traceback(result: Result) -> None:
    """A failure a person can act on ends with one line and an exit status, not a crash."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[smtp]\nport = "abc"\n', "smtp.port"),
        ("[smtp]\nport = 99999\n", "smtp.port"),
        ("[smtp]\nmax_message_size = 0\n", "smtp.max_message_size"),
        ('[hygiene]\nmax_attachment_size = "0MB"\n', "hygiene.max_attachment_size"),
        ('[outbox]\nretry_initial = "-5m"\n', "outbox.retry_initial"),
        ("[outbox]\nconcurrency = 0\n", "outbox.concurrency"),
        ('[log]\nlevel = "DEBUG"\n', "log.level"),
        ('[business_hours]\nstart = "9:00"\n', "business_hours.start"),
        ("[hygiene]\nautomatic_mail_limit = 0\n", "hygiene.automatic_mail_limit"),
        (
            '[[types]]\nname = "t"\naddresses = ["a@x.test"]\nstatuses = []\n'
            'default_status = "open"\n',
            "types[0].statuses",
        ),
        ("types = []\n", "types"),
    ],
)
def test_a_wrong_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text))
    assert error.value.key == key
    assert error.value.problem


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "[outbox]\nretry_initial = -5\n",
            id="negative-retry",
        ),
        pytest.param(
            "[approvals]\nexpire_after = -1\n",
            id="negative-expiry",
        ),
        pytest.param(
            "[outbox]\npoll_interval = 0\n",
            id="zero-poll",
        ),
        pytest.param(
            "[rules]\nsweep_interval = -5\n",
            id="negative-sweep",
        ),
        pytest.param(
            '[hygiene]\nautomatic_mail_window = "0s"\n',
            id="zero-window",
        ),
        pytest.param(
            "[smtp]\ntimeout = true\n",
            id="boolean-duration",
        ),
    ],
)
def test_durations_must_be_positive(tmp_path: Path, text: str) -> None:
    """A duration of nothing, or less than nothing, is a mistake, not a setting."""
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text))
    assert error.value.key.split(".")[0] in text


def test_repeated_type_names_name_the_types_key(tmp_path: Path) -> None:
    one = (
        '[[types]]\nname = "t"\naddresses = ["{a}"]\nstatuses = ["open"]\ndefault_status = "open"\n'
    )
    path = _write(tmp_path, one.format(a="a@x.test") + one.format(a="b@x.test"))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "types[1].name"
    assert error.value.problem == "'t' names another type too"


def test_a_config_path_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    result = _cli("--config", str(tmp_path), "check")
    assert result.exit_code == 78
    assert f"{tmp_path}: cannot be read" in result.output
    _no_traceback(result)


def test_mailflow_config_pointing_nowhere(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = _cli("check", env={"MAILFLOW_CONFIG": str(missing)})
    assert result.exit_code == 78
    assert f"{missing}: no such file" in result.output
    _no_traceback(result)


def test_a_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mailflow.toml"
    path.write_bytes(b'[smtp]\nhostname = "\xff\xfe"\n')
    result = _cli("--config", str(path), "check")
    assert result.exit_code == 78
    assert f"{path}: cannot be read" in result.output
    _no_traceback(result)


def test_a_missing_templates_directory_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, '[templates]\ndir = "tempaltes"\n')
    result = _cli("--config", str(path), "check")
    assert result.exit_code == 78, result.output
    assert "tempaltes" in result.output


def test_own_types_work_with_the_shipped_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[types]]\nname = "helpdesk"\naddresses = ["help@example.org"]\n'
        'statuses = ["open", "closed"]\nclosed = ["closed"]\ndefault_status = "open"\n',
    )
    result = _cli("--config", str(path), "check")
    assert result.exit_code == 0, result.output


def test_a_rules_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    (rules / "zz.yaml").write_bytes(b"\xff\xfe rules: []\n")
    path = _write(tmp_path, '[rules]\ndir = "rules"\n')
    result = _cli("--config", str(path), "check")
    assert result.exit_code == 78
    assert f"{rules / 'zz.yaml'}: cannot be read" in result.output
    _no_traceback(result)


def test_a_type_specific_template_error_is_found_by_check(tmp_path: Path) -> None:
    own = tmp_path / "templates" / "types" / "suggestion" / "customer"
    own.mkdir(parents=True)
    (own / "auto_reply.txt.j2").write_text("Hello {{ ticket.nosuch }}")
    path = _write(tmp_path, '[templates]\ndir = "templates"\n')
    result = _cli("--config", str(path), "check")
    assert result.exit_code == 78
    assert "types/suggestion/customer/auto_reply.txt.j2" in result.output
    assert "nosuch" in result.output
    _no_traceback(result)


def test_check_refuses_a_too_short_secret(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret").write_text("short\n")
    path = _write(tmp_path, "[instance]\nname = 'x'\n")
    result = _cli("--config", str(path), "check")
    assert result.exit_code == 78, result.output
    assert "secret" in result.output


# ---------------------------------------------------------------------------- the database


def test_db_upgrade_twice_is_harmless(tmp_path: Path) -> None:
    path = _write(tmp_path, '[outbox]\nmaildir = "sent"\n')
    for _ in range(2):
        result = _cli("--config", str(path), "db", "upgrade")
        assert result.exit_code == 0, result.output
        assert "database up to date" in result.output


def test_a_database_from_a_newer_version_is_one_line(
    sqlite_config_file: Path, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / "var" / "mailflow.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffff0000ffff'")
    result = _cli("--config", str(sqlite_config_file), "tickets")
    _no_traceback(result)
    assert result.exit_code == 78
    assert "ffff0000ffff" in result.output


def test_an_unusable_database_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data.db").mkdir()
    path = _write(tmp_path, '[database]\nurl = "sqlite+aiosqlite:///data.db"\n')
    result = _cli("--config", str(path), "tickets")
    _no_traceback(result)
    assert result.exit_code in (75, 78)
    assert "data.db" in result.output


# ---------------------------------------------------------------------------- commands


def _counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def test_rules_test_changes_nothing(sqlite_config_file: Path, tmp_path: Path) -> None:
    config_file = sqlite_config_file
    eml = tmp_path / "new.eml"
    eml.write_bytes(build_message(message_id="<dry@customer.test>").as_bytes())
    database = tmp_path / "var" / "mailflow.db"
    before = _counts(database)
    result = _cli("--config", str(config_file), "rules", "test", str(eml))
    assert result.exit_code == 0, result.output
    assert "opened ticket" in result.output
    assert "customer/auto_reply → bob@customer.test" in result.output
    assert "(a dry run: nothing was stored or sent)" in result.output
    assert _counts(database) == before
    assert not (tmp_path / "sent").exists()
    # And the same message, really injected afterwards, becomes ticket 1: no number was used.
    injected = _cli("--config", str(config_file), "inject", str(eml))
    assert "ticket 1" in injected.output


def test_ticket_lists_survive_awkward_subjects(config_file: Path, tmp_path: Path) -> None:
    subjects = ['He said "hi", then left', "semi;colon, comma", "ünïcode — “quoted”"]
    for index, subject in enumerate(subjects):
        eml = tmp_path / f"{index}.eml"
        eml.write_bytes(build_message(subject=subject, message_id=f"<{index}@c.test>").as_bytes())
        assert _cli("--config", str(config_file), "inject", str(eml)).exit_code == 0
    # A folded header carrying an encoded newline.
    raw = (
        b"From: Bob <bob@customer.test>\r\nTo: support@example.com\r\n"
        b"Subject: first line\r\n =?utf-8?q?second=0Aline=2C_with_comma?=\r\n"
        b"Message-ID: <nl@c.test>\r\n\r\nBody\r\n"
    )
    (tmp_path / "nl.eml").write_bytes(raw)
    assert _cli("--config", str(config_file), "inject", str(tmp_path / "nl.eml")).exit_code == 0

    as_csv = _cli("--config", str(config_file), "tickets", "--view", "all", "--format", "csv")
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert len(rows) == 4
    assert all(None not in row and len(row) == 12 for row in rows)
    assert set(subjects) <= {row["subject"] for row in rows}
    as_json = _cli("--config", str(config_file), "tickets", "--view", "all", "--format", "json")
    parsed = json.loads(as_json.output)
    assert {r["subject"] for r in parsed} == {r["subject"] for r in rows}
    table = _cli("--config", str(config_file), "tickets", "--view", "all").output
    assert len(table.strip().splitlines()) == 5  # header + one line per ticket


def test_agent_add_refuses_a_bad_address_and_updates_on_a_second_add(config_file: Path) -> None:
    bad = _cli("--config", str(config_file), "agent", "add", "not-an-address", "--name", "X")
    assert bad.exit_code == 2
    assert "is not an email address" in bad.output
    for name in ("Alice", "Alice B."):
        added = _cli(
            "--config", str(config_file), "agent", "add", "alice@staff.test", "--name", name
        )
        assert added.exit_code == 0, added.output
    rows = json.loads(
        _cli("--config", str(config_file), "agent", "list", "--format", "json").output
    )
    assert [(r["email"], r["name"]) for r in rows] == [("alice@staff.test", "Alice B.")]


def test_retry_of_a_processed_message_is_refused(config_file: Path, tmp_path: Path) -> None:
    eml = tmp_path / "m.eml"
    eml.write_bytes(build_message(message_id="<ok@c.test>").as_bytes())
    _cli("--config", str(config_file), "inject", str(eml))
    (row,) = json.loads(
        _cli("--config", str(config_file), "inbound", "list", "--format", "json").output
    )
    assert row["state"] == "processed"
    result = _cli("--config", str(config_file), "inbound", "retry", str(row["id"]))
    assert result.exit_code == 1
    assert f"no quarantined inbound message {row['id']}" in result.output
    missing = _cli("--config", str(config_file), "inbound", "show", "999")
    assert missing.exit_code == 1
    assert "no inbound message 999" in missing.output


# ---------------------------------------------------------------------------- the daemon


def _daemon_config(tmp_path: Path, extra: str = "", smtp_port: int | None = None) -> Path:
    web = free_port()
    return _write(
        tmp_path,
        f"[smtp]\nport = {smtp_port or free_port()}\n"
        f'[web]\nport = {web}\nbase_url = "http://127.0.0.1:{web}"\n'
        f'[outbox]\nmaildir = "sent"\npoll_interval = "1s"\n{extra}',
    )


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [*_MAILFLOW, "--config", str(config), "run"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
        )


def _wait_for_log(process: subprocess.Popen[bytes], log: Path, text: str, within: float) -> None:
    deadline = time.monotonic() + within
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged; log:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None
    return process.returncode


def test_a_port_in_use_is_said_plainly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = _daemon_config(tmp_path, smtp_port=port)
        log = tmp_path / "daemon.log"
        process = _start(config, log)
        try:
            code = process.wait(timeout=30)
        finally:
            _stop(process)
    text = log.read_text()
    assert code != 0
    assert "Traceback" not in text
    assert f"('127.0.0.1', {port})" in text
    assert "address already in use" in text
    assert "[smtp]" in text, "which listener: the section to change"


def test_sighup_keeps_the_old_rules_on_a_broken_file_and_takes_a_fixed_one(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    config = _daemon_config(tmp_path, '[rules]\ndir = "rules"\n')
    log = tmp_path / "daemon.log"
    process = _start(config, log)
    try:
        _wait_for_log(process, log, "daemon.started", 30)
        broken = rules / "zz.yaml"
        broken.write_text("rules:\n  - name: half\n    trigger: nope\n    do: []\n")
        process.send_signal(signal.SIGHUP)
        _wait_for_log(process, log, "daemon.reload_refused", 10)
        assert "zz.yaml" in log.read_text()
        assert process.poll() is None, "a bad file on reload must not stop the daemon"

        # Mail still flows with the old rules: the auto-reply goes out.
        import smtplib

        port = int(config.read_text().split("port = ")[1].split("\n")[0])
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(
                "bob@customer.test", ["support@example.com"], build_message().as_bytes()
            )
        deadline = time.monotonic() + 15
        sent = tmp_path / "sent" / "new"
        while not (sent.is_dir() and any(sent.iterdir())):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

        broken.write_text(
            "rules:\n  - name: note every new ticket\n    trigger: ticket_created\n"
            "    do:\n      - add_note: seen by the reloaded rules\n"
        )
        process.send_signal(signal.SIGHUP)
        _wait_for_log(process, log, "daemon.reloaded", 10)
    finally:
        code = _stop(process)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_sigterm_mid_data_exits_zero_and_the_client_is_not_told_250(tmp_path: Path) -> None:
    """A message whose DATA has not ended is not under way yet: the daemon may stop, but
    it must not claim to have taken the message, and it must exit 0."""
    import socket

    config = _daemon_config(tmp_path)
    port = int(config.read_text().split("port = ")[1].split("\n")[0])
    log = tmp_path / "daemon.log"
    process = _start(config, log)
    try:
        _wait_for_log(process, log, "daemon.started", 30)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            reader = conn.makefile("rb")
            assert reader.readline().startswith(b"220")
            for command in (
                b"HELO c.test",
                b"MAIL FROM:<bob@c.test>",
                b"RCPT TO:<support@example.com>",
                b"DATA",
            ):
                conn.sendall(command + b"\r\n")
                reader.readline()
            conn.sendall(b"Subject: half\r\n\r\nthe first half")
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=20)
            rest = reader.read()
    finally:
        _stop(process)
    assert code == 0, log.read_text()
    assert b"250" not in rest
    assert os.path.exists(tmp_path / "var" / "mailflow.db")
