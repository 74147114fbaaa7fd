"""Helpers for tests: building messages and sending them over real SMTP."""

from __future__ import annotations

import asyncio
import re
import smtplib
import struct
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from click.testing import CliRunner, Result
from sqlalchemy import select

from mailflow.app import App
from mailflow.cli import cli
from mailflow.db.models import Agent, History, OutboxMessage, Ticket
from mailflow.db.people import AgentRole, Group, GroupMember, Usergroup, UsergroupMember
from mailflow.mail.addresses import Mailbox
from mailflow.people.directory import team_named
from mailflow.tickets import ops

if TYPE_CHECKING:
    from tests.conftest import Received, Running

T = TypeVar("T")


def build_message(
    *,
    sender: str = "Bob Customer <bob@customer.test>",
    to: str = "support@example.com",
    subject: str = "Printer is on fire",
    body: str = "Help, my printer is on fire.\n\nBob",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message


async def smtp_send(
    port: int,
    message: EmailMessage | bytes,
    *,
    mail_from: str = "bob@customer.test",
    rcpt_tos: list[str] | None = None,
) -> tuple[int, bytes]:
    """Send one message with smtplib (in a thread: the daemon shares this loop) and return the
    server's answer to DATA."""

    def send() -> tuple[int, bytes]:
        raw = message if isinstance(message, bytes) else message.as_bytes(policy=policy.SMTP)
        recipients = rcpt_tos or (
            [str(message["To"])] if isinstance(message, EmailMessage) else ["support@example.com"]
        )
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("client.test")
            code, reply = client.mail(mail_from)
            assert code == 250, reply
            for rcpt in recipients:
                code, reply = client.rcpt(rcpt)
                if code != 250:
                    raise smtplib.SMTPRecipientsRefused({rcpt: (code, reply)})
            try:
                return client.data(raw)
            except smtplib.SMTPDataError as exc:
                return exc.smtp_code, exc.smtp_error

    return await asyncio.to_thread(send)


async def add_agent(
    app: App,
    email: str,
    name: str,
    *,
    types: list[str] | None = None,
    notify: bool = True,
    role: AgentRole = AgentRole.OPERATOR,
) -> Agent:
    async with app.db.transaction() as session:
        team = await team_named(session, None, app.clock.now())
        agent = Agent(
            email=email,
            name=name,
            types=types or [],
            notify=notify,
            active=True,
            created_at=app.clock.now(),
            team_id=team.id,
            role=role,
        )
        session.add(agent)
    return agent


async def add_group(app: App, name: str, *emails: str) -> None:
    """A group of the first agent's team, with these agents in it."""
    async with app.db.transaction() as session:
        agents = (await session.scalars(select(Agent).where(Agent.email.in_(emails)))).all()
        group = Group(team_id=agents[0].team_id, name=name, created_at=app.clock.now())
        session.add(group)
        await session.flush()
        session.add_all(GroupMember(group_id=group.id, agent_id=a.id) for a in agents)


async def get_ticket(app: App, number: int) -> Ticket:
    async with app.db.transaction() as session:
        ticket = await session.get(Ticket, number)
        assert ticket is not None, f"no ticket {number}"
        return ticket


async def all_rows(app: App, model: type[T]) -> list[T]:
    async with app.db.transaction() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())  # type: ignore[attr-defined]


async def queued(app: App) -> list[list[str]]:
    """Everyone mail was queued for, in order: committed before the SMTP answer, so no
    waiting for the sender."""
    return [row.rcpt_tos for row in await all_rows(app, OutboxMessage)]


async def history_actions(app: App, ticket_id: int) -> list[str]:
    """What happened to a ticket, by name, oldest first."""
    return [h.action for h in await all_rows(app, History) if h.ticket_id == ticket_id]


def rules_dir(tmp_path: Path, files: dict[str, str]) -> dict[str, Any]:
    """Settings that load the rules in `files` (name → YAML) after the defaults."""
    path = tmp_path / "rules"
    path.mkdir(exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return {"rules": {"dir": str(path)}}


def reply_address(received: Received) -> str:
    """The signed Reply-To of a mail from mailflow: where an agent's answer goes."""
    return str(received.message["Reply-To"].addresses[0].addr_spec)


async def answer_notice(running: Running, notice: Received, sender: str, body: str) -> None:
    """Someone answers a mail from mailflow: to its signed Reply-To, from their own address."""
    message = build_message(
        sender=sender,
        to=reply_address(notice),
        subject="Re: " + str(notice.message["Subject"]),
        body=body,
        in_reply_to=notice.message["Message-ID"],
    )
    assert (await smtp_send(running.port, message, mail_from=sender))[0] == 250


async def add_usergroup(
    app: App, name: str, members: dict[str, bool], *, default: bool = False
) -> None:
    """A usergroup with members (address → supervisor?); `default`: their default one."""
    now = app.clock.now()
    async with app.db.transaction() as session:
        usergroup = Usergroup(name=name, title=name.title(), created_at=now, fields={})
        session.add(usergroup)
        await session.flush()
        for address, supervisor in members.items():
            customer = await ops.customer_for(session, Mailbox("", address), now)
            session.add(
                UsergroupMember(
                    usergroup_id=usergroup.id,
                    customer_id=customer.id,
                    supervisor=supervisor,
                    is_default=default,
                    created_at=now,
                )
            )


async def mailflow_cli(config: Path, *args: str) -> Result:
    """`mailflow --config CONFIG ARGS`: the CLI runs its own event loop, so off this one,
    in a thread."""
    return await asyncio.to_thread(CliRunner().invoke, cli, ["--config", str(config), *args])


def page_nonce(page: str) -> str:
    """The one-time nonce an approval page issues with its form."""
    found = re.search(r'name="nonce" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def wait_until(check: Callable[[], Awaitable[bool]], within: float = 10) -> None:
    """Poll `check` until it holds; for effects of background tasks such as the sender."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


def winmail_dat(files: list[tuple[str, bytes]]) -> bytes:
    """A minimal Outlook TNEF stream (winmail.dat) carrying the given files."""

    def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        return (
            struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)
        )

    message_level, attachment_level = 1, 2
    stream = struct.pack("<IH", 0x223E9F78, 1)
    stream += attribute(message_level, 0x9006, 0x0009, struct.pack("<I", 0x00010000))
    for filename, data in files:
        stream += attribute(
            attachment_level, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff" + bytes(8)
        )
        stream += attribute(attachment_level, 0x8010, 0x0001, filename.encode() + b"\x00")
        stream += attribute(attachment_level, 0x800F, 0x0006, data)
    return stream
