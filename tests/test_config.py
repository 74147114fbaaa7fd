"""Configuration: defaults that run, and mistakes reported as file, key and problem."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from mailflow.config import ConfigError, from_mapping, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(text)
    return path


def test_no_file_gives_the_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILFLOW_CONFIG", raising=False)
    config = load_config(None)
    assert (config.smtp.host, config.smtp.port) == ("127.0.0.1", 2525)
    assert config.database_url.endswith("/var/mailflow.db")
    assert config.outbox.relay is None
    assert [t.name for t in config.types] == ["ticket", "suggestion"]
    assert config.ticket_type("suggestion").statuses == [
        "new",
        "under review",
        "accepted",
        "rejected",
        "done",
    ]


def test_shipped_example_is_valid_and_matches_the_defaults() -> None:
    example = Path(__file__).parents[1] / "mailflow" / "example.toml"
    config = load_config(example)
    defaults = from_mapping({}, "(built-in defaults)", example.parent)  # the same var/
    assert config.model_dump(exclude={"base_dir", "source"}) == defaults.model_dump(
        exclude={"base_dir", "source"}
    )


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "[smtp]\nprot = 25\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: smtp.prot: unknown key"


def test_bad_value_says_what_is_wrong(tmp_path: Path) -> None:
    path = _write(tmp_path, '[smtp]\nmax_message_size = "lots"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "smtp.max_message_size"
    assert "'lots' is not a size" in error.value.problem


def test_default_status_must_be_one_of_the_statuses(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[types]]\nname = "ticket"\naddresses = ["help@example.org"]\n'
        'statuses = ["open", "closed"]\ndefault_status = "opne"\n',
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "types[0]"
    assert "default_status 'opne' is not one of the statuses" in error.value.problem


def test_an_approval_page_must_outlast_the_decision_delay(tmp_path: Path) -> None:
    path = _write(tmp_path, '[approvals]\nmin_decision_delay = "5m"\npage_expire_after = "5m"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "approvals.page_expire_after"
    assert "longer than min_decision_delay" in error.value.problem


def test_an_address_cannot_belong_to_two_types(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[types]]\nname = "a"\naddresses = ["help@example.org"]\nstatuses = ["open"]\n'
        'default_status = "open"\n'
        '[[types]]\nname = "b"\naddresses = ["Help@Example.org"]\nstatuses = ["open"]\n'
        'default_status = "open"\n',
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "types[1].addresses"
    assert error.value.problem == "help@example.org is listed also in 'a'"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("help.example.com", "'help.example.com' is not an http(s) URL"),
        ("ftp://help.example.com", "is not an http(s) URL"),
        ("https://help.example.com/?x=1", "the base URL takes no ?query or #fragment"),
    ],
)
def test_the_web_base_url_must_be_an_http_url(tmp_path: Path, url: str, problem: str) -> None:
    path = _write(tmp_path, f'[web]\nbase_url = "{url}"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "web.base_url"
    assert problem in error.value.problem


def test_the_web_base_url_may_sit_under_a_path(tmp_path: Path) -> None:
    path = _write(tmp_path, '[web]\nbase_url = "https://example.com/helpdesk/"\n')
    assert load_config(path).web.base_url == "https://example.com/helpdesk"


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[smtp\nport = 1\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: is not valid TOML")


def test_durations_and_sizes_take_units(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[outbox]\nretry_initial = "90s"\nretry_max = "2h"\ngive_up_after = 86400\n'
        '[smtp]\nmax_message_size = "512KB"\n',
    )
    config = load_config(path)
    assert config.outbox.retry_initial == timedelta(seconds=90)
    assert config.outbox.retry_max == timedelta(hours=2)
    assert config.outbox.give_up_after == timedelta(days=1)
    assert config.smtp.max_message_size == 512 * 1024


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[outbox]\nmaildir = "mail/out"\n')
    config = load_config(path)
    assert config.path(config.outbox.maildir) == tmp_path / "mail" / "out"
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path}/var/mailflow.db"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[smtp]\nprot = 25\n", "mailflow.toml: smtp.prot: unknown key"),
        ('[rules]\ndir = "nowhere"\n', "nowhere: rules directory does not exist"),
    ],
)
def test_run_with_a_mistake_stops_with_one_line_and_no_traceback(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mailflow.cli import main; main()",
            "--config",
            str(path),
            "run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 78  # EX_CONFIG: systemd does not restart in a loop
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists(), "nothing was started or created"
