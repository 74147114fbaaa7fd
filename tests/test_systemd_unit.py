"""The shipped systemd unit, run the way systemd runs it, without systemd: the README's
install (the example configuration at /etc/mailflow/mailflow.toml, nothing else set) under a
temporary root, the unit's ExecStartPre and ExecStart with its Environment=, the
$STATE_DIRECTORY systemd gives for StateDirectory=, its WorkingDirectory= and UMask=, as an
unprivileged user.

What is emulated and what is not: the unit's `mailflow` system user does not exist on a test
machine and a test should not add users to it, so when the tests run as root the process
runs as `nobody`/`nogroup` instead (when they run as an ordinary user, as that user). Where
`nobody` cannot reach the Python the tests run on (a pyenv under /root), it runs as root
with the unit's empty CapabilityBoundingSet= (setpriv), which leaves root no power over
files it may not write by their mode. ProtectSystem=strict is stood for by permissions:
everything under the temporary root but the state directory is not writable for the
service. The other sandboxing options (namespaces, seccomp) need systemd itself;
`systemd-analyze verify` checks the unit in .ci/run."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.dovecot import free_port
from tests.support import build_message

REPO = Path(__file__).parents[1]
UNIT = REPO / "systemd" / "mailflow.service"
EXAMPLE = REPO / "mailflow" / "example.toml"
INSTALL_PREFIX = "/opt/mailflow"  # the README's `python3 -m venv /opt/mailflow`
STAND_IN = ("nobody", "nogroup")


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections → key → values (a key may repeat, as Environment= does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "min": 60}
    for suffix, factor in units.items():
        if value.endswith(suffix) and value[: -len(suffix)].isdigit():
            return int(value[: -len(suffix)]) * factor
    return float(value)


@dataclass(frozen=True)
class Runner:
    """Who runs the service's commands, and how they become that user."""

    user: pwd.struct_passwd
    popen: dict[str, Any] = field(default_factory=dict)
    prefix: tuple[str, ...] = ()


@cache
def runner() -> Runner:
    if os.geteuid() != 0:
        return Runner(pwd.getpwuid(os.geteuid()))
    try:
        user, _ = pwd.getpwnam(STAND_IN[0]), grp.getgrnam(STAND_IN[1])
    except KeyError:
        user = None
    switch = {"user": STAND_IN[0], "group": STAND_IN[1], "extra_groups": []}
    if user is not None:
        try:
            probe = subprocess.run(
                [sys.executable, "-c", "import mailflow.cli"], cwd="/", check=False, **switch
            )
        except PermissionError:
            probe = None
        if probe is not None and probe.returncode == 0:
            return Runner(user, switch)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root, no user that can run this Python, and no setpriv to drop root's power")
    prefix = (setpriv, "--bounding-set=-all", "--inh-caps=-all", "--")
    return Runner(pwd.getpwuid(0), {}, prefix)


@dataclass
class Service:
    """The unit's [Service], with every absolute path moved under `root`."""

    root: Path
    section: dict[str, list[str]]

    def one(self, key: str) -> str:
        (value,) = self.section[key]
        return value

    def path(self, value: str) -> Path:
        if value.startswith(INSTALL_PREFIX + "/"):  # the venv the tests run from
            return Path(sys.prefix) / value.removeprefix(INSTALL_PREFIX + "/")
        return self.root / value.lstrip("/")

    def command(self, key: str) -> list[str]:
        program, *args = self.one(key).split()
        return [str(self.path(program)), *args]

    @property
    def state_dir(self) -> Path:
        return self.path(f"/var/lib/{self.one('StateDirectory')}")

    @property
    def config_dir(self) -> Path:
        return self.path(f"/etc/{self.one('ConfigurationDirectory')}")

    @property
    def environment(self) -> dict[str, str]:
        """What systemd gives the process: the unit's Environment=, with paths moved, and
        $STATE_DIRECTORY, $USER, $HOME and a plain PATH."""
        user = runner().user
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "USER": user.pw_name,
            "LOGNAME": user.pw_name,
            "HOME": str(self.state_dir),  # README: useradd --home /var/lib/mailflow
            "STATE_DIRECTORY": str(self.state_dir),
        }
        for assignment in self.section.get("Environment", []):
            name, _, value = assignment.partition("=")
            env[name] = str(self.path(value)) if value.startswith("/") else value
        return env

    def prepare(self) -> None:
        """What systemd does before ExecStartPre: the state directory, owned by the user."""
        mode = int(self.one("StateDirectoryMode"), 8)
        self.state_dir.mkdir(parents=True)
        self.state_dir.chmod(mode)
        os.chown(self.state_dir, runner().user.pw_uid, runner().user.pw_gid)

    def popen(self, key: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                [*runner().prefix, *self.command(key)],
                env=self.environment,
                cwd=self.path(self.one("WorkingDirectory")),
                umask=int(self.one("UMask"), 8),
                stdout=out,
                stderr=subprocess.STDOUT,
                **runner().popen,
            )


@pytest.fixture
def root() -> Iterator[Path]:
    """A temporary root another user can walk into (pytest's tmp_path is private to us)."""
    runner()
    path = Path(tempfile.mkdtemp(prefix="mailflow-unit-"))
    path.chmod(0o755)
    yield path
    for directory in (path, *(p for p in path.rglob("*") if p.is_dir())):
        directory.chmod(0o755)
    shutil.rmtree(path)


def install(root: Path, config_text: str) -> Service:
    """The README's install: the unit, and the configuration at /etc/mailflow/mailflow.toml
    readable by the service's group (install -m 0640 -g mailflow)."""
    service = Service(root, parse_unit(UNIT.read_text())["Service"])
    config = Path(service.environment["MAILFLOW_CONFIG"])
    assert config.parent == service.config_dir
    config.parent.mkdir(parents=True)
    config.write_text(config_text)
    config.chmod(0o640)
    os.chown(config, os.geteuid(), runner().user.pw_gid)
    service.prepare()
    for directory in (root, root / "etc", config.parent):  # ProtectSystem=strict
        directory.chmod(0o555)
    return service


def _on_free_ports(text: str) -> str:
    """The one edit a shared test machine needs: ports nobody else is using."""
    smtp, web = free_port(), free_port()
    text = text.replace("port = 2525", f"port = {smtp}")
    return text.replace("port = 8025", f"port = {web}").replace(":8025", f":{web}")


def _smtp_port(text: str) -> int:
    section = text.split("[smtp]", 1)[1]
    line = next(line for line in section.splitlines() if line.startswith("port = "))
    return int(line.removeprefix("port = "))


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"nothing listens on {port}:\n{log.read_text()}")


def _wait_for_files(directory: Path, count: int) -> list[Path]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = sorted(directory.glob("*")) if directory.is_dir() else []
        if len(found) >= count:
            return found
        time.sleep(0.1)
    pytest.fail(f"{directory} has fewer than {count} files")


def test_readme_install_starts_takes_mail_and_stops_under_the_units_user_and_paths(
    root: Path, tmp_path: Path
) -> None:
    config_text = _on_free_ports(EXAMPLE.read_text())
    service = install(root, config_text)
    check_log = tmp_path / "check.log"
    check = service.popen("ExecStartPre", check_log)
    assert check.wait(60) == 0, check_log.read_text()

    log = tmp_path / "run.log"
    daemon = service.popen("ExecStart", log)
    try:
        _wait_for_port(_smtp_port(config_text), daemon, log)
        message = build_message(sender="bob@example.org", subject="Printer is on fire")
        with smtplib.SMTP("127.0.0.1", _smtp_port(config_text), timeout=30) as client:
            client.ehlo()
            client.mail("bob@example.org")
            client.rcpt("support@example.com")
            code, reply = client.data(message.as_bytes())
        assert code == 250, reply
        assert _wait_for_files(service.state_dir / "sent" / "new", 1)
    finally:
        daemon.send_signal(getattr(signal, service.one("KillSignal")))
        stopped = daemon.wait(_seconds(service.one("TimeoutStopSec")))
    assert stopped == 0, log.read_text()

    secret = service.state_dir / "secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.stat().st_uid == runner().user.pw_uid
    assert (service.state_dir / "mailflow.db").is_file()
    assert [p.name for p in service.config_dir.iterdir()] == ["mailflow.toml"]
    assert f"checking {service.config_dir / 'mailflow.toml'}" in check_log.read_text()


def test_check_refuses_a_secret_path_the_service_cannot_write(root: Path, tmp_path: Path) -> None:
    """The old example's `secret_file = "var/secret"` lands in read-only /etc/mailflow."""
    smtp, web = free_port(), free_port()
    text = f'[instance]\nsecret_file = "var/secret"\n[smtp]\nport = {smtp}\n[web]\nport = {web}\n'
    service = install(root, text)
    log = tmp_path / "check.log"
    assert service.popen("ExecStartPre", log).wait(60) == 78, log.read_text()
    output = log.read_text()
    assert "instance.secret_file" in output
    assert f"{service.config_dir / 'var' / 'secret'} cannot be written" in output
    assert "Traceback" not in output
