"""A thin, typed layer over aioimaplib: connect (TLS, STARTTLS or plain), log in with a
password or XOAUTH2, and read the few responses the folder watcher needs."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aioimaplib

from mailflow.config import ImapAccountConfig
from mailflow.credentials import login_for

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_UID = re.compile(rb"\bUID (\d+)")
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapError(Exception):
    """The server refused a command or the connection failed; reconnect and try again."""


@dataclass(frozen=True, slots=True)
class Fetched:
    uid: int
    raw: bytes


def _context(account: ImapAccountConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not account.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _ok(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if response.result != "OK":
        detail = b" ".join(bytes(line) for line in response.lines)[:300]
        raise ImapError(f"{what}: {response.result} {detail.decode('utf-8', 'replace')}")
    return response


async def _starttls(client: aioimaplib.IMAP4, account: ImapAccountConfig) -> None:
    """aioimaplib has no STARTTLS: send the command, then upgrade the transport in place."""
    protocol = client.protocol
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=asyncio.get_running_loop())
    _ok(await protocol.execute(command), "STARTTLS")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(
        protocol.transport, protocol, _context(account), server_hostname=account.host
    )
    await protocol.capability()


async def connect(
    account: ImapAccountConfig,
    base: Path,
    on_lost: Callable[[Exception | None], None] | None = None,
) -> aioimaplib.IMAP4:
    """A logged-in client; `on_lost` is called when the server closes the connection (an
    IDLE would otherwise wait for its renewal before noticing)."""
    timeout = account.timeout.total_seconds()
    port = account.tcp_port
    client: aioimaplib.IMAP4
    if account.security == "tls":
        client = aioimaplib.IMAP4_SSL(
            account.host, port, timeout=timeout, ssl_context=_context(account)
        )
    else:
        client = aioimaplib.IMAP4(account.host, port, timeout=timeout)
    client.protocol.conn_lost_cb = on_lost  # IMAP4_SSL takes no conn_lost_cb argument
    try:
        await client.wait_hello_from_server()
    except (OSError, TimeoutError) as exc:
        raise ImapError(f"cannot connect to {account.host}:{port}: {exc}") from exc
    try:
        if account.security == "starttls":
            await _starttls(client, account)
        await _login(client, account, base)
    except BaseException:  # a refused login must not leave its connection open
        close(client)
        raise
    return client


async def _login(client: aioimaplib.IMAP4, account: ImapAccountConfig, base: Path) -> None:
    login = await login_for(account, base)
    if login is None:
        raise ImapError("no username configured")
    if login.oauth2:
        # aioimaplib's annotation says bytes, but it encodes the token itself.
        _ok(await client.xoauth2(login.username, login.secret), "XOAUTH2 login")
    else:
        _ok(await client.login(login.username, login.secret), "login")


def close(client: aioimaplib.IMAP4) -> None:
    """Drop the connection at once (no LOGOUT): for a connection that is of no more use."""
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()


async def select(client: aioimaplib.IMAP4, folder: str) -> int:
    """Select the folder and return its UIDVALIDITY."""
    response = _ok(await client.select(_quoted(folder)), f"SELECT {folder}")
    for line in response.lines:
        match = _UIDVALIDITY.search(bytes(line))
        if match:
            return int(match.group(1))
    raise ImapError(f"SELECT {folder}: no UIDVALIDITY in the answer")


async def search_uids(client: aioimaplib.IMAP4, criteria: str) -> list[int]:
    response = _ok(await client.uid_search(criteria, charset=None), f"UID SEARCH {criteria}")
    uids: list[int] = []
    for line in response.lines[:-1]:
        uids += [int(token) for token in bytes(line).split() if token.isdigit()]
    return sorted(set(uids))


async def sizes(client: aioimaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    response = _ok(await client.uid("fetch", _set(uids), "(RFC822.SIZE)"), "UID FETCH sizes")
    found: dict[int, int] = {}
    for line in response.lines:
        uid, size = _FETCH_UID.search(bytes(line)), _FETCH_SIZE.search(bytes(line))
        if uid and size:
            found[int(uid.group(1))] = int(size.group(1))
    return found


async def fetch(client: aioimaplib.IMAP4, uid: int, part: str = "BODY.PEEK[]") -> Fetched:
    """One message's bytes; BODY.PEEK leaves \\Seen alone until we have committed."""
    response = _ok(await client.uid("fetch", str(uid), f"(UID {part})"), f"UID FETCH {uid}")
    for index, line in enumerate(response.lines):
        if isinstance(line, bytearray) and index > 0:
            return Fetched(uid, bytes(line))
    raise ImapError(f"UID FETCH {uid}: the message is gone or empty")


async def mark_seen(client: aioimaplib.IMAP4, uids: list[int]) -> None:
    _ok(await client.uid("store", _set(uids), "+FLAGS.SILENT", r"(\Seen)"), "UID STORE \\Seen")


async def move(client: aioimaplib.IMAP4, uids: list[int], folder: str) -> None:
    """MOVE where the server has it (RFC 6851), else COPY, \\Deleted and EXPUNGE."""
    target = _quoted(folder)
    if client.has_capability("MOVE"):
        _ok(await client.uid("move", _set(uids), target), f"UID MOVE to {folder}")
        return
    _ok(await client.uid("copy", _set(uids), target), f"UID COPY to {folder}")
    _ok(
        await client.uid("store", _set(uids), "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE \\Deleted"
    )
    if client.has_capability("UIDPLUS"):
        _ok(await client.uid("expunge", _set(uids)), "UID EXPUNGE")
    else:
        _ok(await client.expunge(), "EXPUNGE")


async def ensure_folder(client: aioimaplib.IMAP4, folder: str) -> None:
    response = await client.create(_quoted(folder))
    if response.result not in ("OK", "NO"):  # NO: it exists already
        _ok(response, f"CREATE {folder}")


def _set(uids: list[int]) -> str:
    return ",".join(str(uid) for uid in uids)


def _quoted(folder: str) -> str:
    """A folder name as IMAP writes it: modified UTF-7 (RFC 3501 §5.1.3), quoted."""
    name = modified_utf7(folder)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def modified_utf7(name: str) -> str:
    """ "Entwürfe" is "Entw&APw-rfe" on the wire; "&" is "&-"; printable ASCII stays."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            encoded = base64.b64encode("".join(run).encode("utf-16-be")).decode("ascii")
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)
