"""Secrets for logging in to a relay or a mailbox, read when needed, never at start-up."""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass
from pathlib import Path

from mailflow.config import Config, ConfigError, Credentials

TOKEN_COMMAND_TIMEOUT = 30.0


class CredentialError(Exception):
    """A password or token that cannot be obtained; the login is retried later."""


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    secret: str
    oauth2: bool  # XOAUTH2 with a bearer token instead of a password


def _read(path: Path, base: Path) -> str:
    full = path if path.is_absolute() else base / path
    try:
        return full.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialError(f"cannot read {full}: {exc}") from None


async def _run(command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *shlex.split(command),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TOKEN_COMMAND_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CredentialError(f"token command timed out: {command}") from None
    if process.returncode != 0:
        detail = err.decode("utf-8", "replace").strip()[:200]
        raise CredentialError(f"token command exited {process.returncode}: {detail}")
    token = out.decode("utf-8", "replace").strip()
    if not token:
        raise CredentialError(f"token command printed nothing: {command}")
    return token


async def login_for(credentials: Credentials, base: Path) -> Login | None:
    """The login to use now, or None when the server needs none. A token command runs at
    every login, so a token it refreshes is always current."""
    if not credentials.username:
        return None
    if credentials.oauth2_token_command:
        return Login(credentials.username, await _run(credentials.oauth2_token_command), True)
    if credentials.oauth2_token_file:
        return Login(credentials.username, _read(credentials.oauth2_token_file, base), True)
    if credentials.password_file:
        return Login(credentials.username, _read(credentials.password_file, base), False)
    return Login(credentials.username, credentials.password or "", False)


def check_secret_files(config: Config, credentials: Credentials, key: str) -> None:
    """At start-up: a secret file that cannot be read is a configuration mistake."""
    for name in ("password_file", "oauth2_token_file"):
        path = getattr(credentials, name)
        if path is not None and not config.path(path).is_file():
            raise ConfigError(config.source, f"{key}.{name}", f"{config.path(path)} is not a file")
