"""A throwaway Dovecot IMAP server for tests: its own config, mail directory and port."""

from __future__ import annotations

import imaplib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "support", "secret-password"
DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)

CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth_mechanisms}
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
mail_location = maildir:{root}/mail/%u
mail_privileged_group = mail
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
{oauth_passdb}
userdb {{
  driver = static
  args = uid=mail gid=mail home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Dovecot:
    root: Path
    port: int = 0
    introspection_url: str | None = None

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / USER

    def write_config(self) -> None:
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root / "mail", "mail", "mail")
        shutil.chown(self.root / "home", "mail", "mail")
        oauth_passdb = oauth_mechanisms = ""
        if self.introspection_url:
            oauth_mechanisms = " xoauth2 oauthbearer"
            settings = self.root / "oauth2.conf.ext"
            settings.write_text(
                f"introspection_url = {self.introspection_url}\n"
                "introspection_mode = post\nusername_attribute = username\n"
                "active_attribute = active\nactive_value = true\n"
            )
            oauth_passdb = (
                "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {settings}\n}}\n"
            )
        self.config.write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                password=PASSWORD,
                oauth_passdb=oauth_passdb,
                oauth_mechanisms=oauth_mechanisms,
            )
        )

    def start(self) -> None:
        assert DOVECOT is not None
        if not self.port:
            self.port = free_port()
        self.write_config()
        # Dovecot daemonizes and its children inherit our descriptors: give it none to hold.
        subprocess.run(
            [DOVECOT, "-c", str(self.config)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start: {self.log()}")

    def stop(self, wait: bool = True) -> None:
        """SIGTERM to the master; it takes a couple of seconds to close its port, so wait only
        when the same port is to be used again."""
        pid_file = self.root / "run" / "master.pid"
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 15
        while wait and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text() if path.exists() else ""

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a message into the mailbox the way a provider would: IMAP APPEND."""
        self.append_many([raw], folder)

    def append_many(self, messages: list[bytes], folder: str = "INBOX") -> None:
        with self.client() as client:
            client.create(folder)
            for raw in messages:
                stamp = imaplib.Time2Internaldate(time.time())
                status, _ = client.append(folder, "", stamp, raw)
                assert status == "OK"

    def flags(self, folder: str = "INBOX") -> dict[str, str]:
        """Message-ID → flags for every message in the folder."""
        with self.client() as client:
            client.select(folder)
            _, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found: dict[str, str] = {}
        for item in data:
            if isinstance(item, tuple):
                flags = item[0].decode()
                message_id = item[1].decode().split(":", 1)[-1].strip()
                found[message_id] = flags[
                    flags.find("FLAGS (") + 7 : flags.find(")", flags.find("FLAGS ("))
                ]
        return found

    def count(self, folder: str) -> int:
        with self.client() as client:
            status, data = client.select(folder)
            return int(data[0]) if status == "OK" else 0
