"""`mailflow check`: configuration, rules and templates, without starting anything."""

from __future__ import annotations

import os
import pwd
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import click

from mailflow.cli.common import app_of, config_of
from mailflow.config import Config, ConfigError
from mailflow.db.models import ActorKind, Customer, Direction, Message, Ticket
from mailflow.db.people import Group, Usergroup
from mailflow.db.record import Activity, ActivityKind, Approval, ApprovalState, Resolution
from mailflow.i18n.choice import Speech
from mailflow.i18n.speaking import own_messages
from mailflow.mail.addresses import Mailbox
from mailflow.outbox.mailer import Recipient, TemplateMail
from mailflow.tickets.ops import Actor
from mailflow.tokens import Role

_SAMPLE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def sample_ticket(type_name: str, status: str) -> Ticket:
    customer = Customer(id=1, email="sam@example.org", name="Sam Sample", created_at=_SAMPLE_TIME)
    return Ticket(
        id=1,
        type=type_name,
        status=status,
        subject="Sample subject",
        priority="normal",
        customer_id=1,
        customer=customer,
        assignee=None,
        group=Group(id=1, team_id=1, name="sample-group", created_at=_SAMPLE_TIME),
        usergroup=Usergroup(
            id=1,
            name="sample",
            title="Sample Ltd",
            fields={},
            notify_supervisors=True,
            created_at=_SAMPLE_TIME,
        ),
        private=False,
        created_at=_SAMPLE_TIME,
        updated_at=_SAMPLE_TIME,
    )


def sample_message() -> Message:
    return Message(
        id=1,
        ticket_id=1,
        direction=Direction.IN,
        author_kind=ActorKind.CUSTOMER,
        from_address="sam@example.org",
        from_name="Sam Sample",
        subject="Sample subject",
        text="Sample text.",
        full_text="Sample text.",
        created_at=_SAMPLE_TIME,
        attachments=[],
    )


# Every field any event has, so a template may use whichever its trigger provides.
SAMPLE_EVENT = SimpleNamespace(
    trigger="sample",
    ticket_id=1,
    message_id=1,
    agent_id=1,
    old="open",
    new="open",
    old_agent_id=None,
    new_agent_id=1,
    outbox_id=1,
    diagnostic="550 5.1.1 sample diagnostic",
    reason="sample@example.org takes no part in ticket 1",
)


def sample_context() -> dict[str, object]:
    """What any mail template may be given, filled with samples."""
    approval = Approval(
        id=1,
        ticket_id=1,
        approver="ann@example.org",
        reason="A refund of 40 EUR",
        requested_by="Alice",
        state=ApprovalState.APPROVED,
        comment="Fine.",
        created_at=_SAMPLE_TIME,
        expires_at=_SAMPLE_TIME + timedelta(days=7),
        decided_at=_SAMPLE_TIME + timedelta(hours=1),
    )
    activity = Activity(
        id=1,
        ticket_id=1,
        kind=ActivityKind.CALL,
        title="Call back",
        details="About the invoice.",
        at=_SAMPLE_TIME,
        owner_id=1,
        created_at=_SAMPLE_TIME,
    )
    resolution = Resolution(
        ticket_id=1, text="Restarted the printer.", author="alice", updated_at=_SAMPLE_TIME
    )
    return {
        "event": SAMPLE_EVENT,
        "problems": ["#sample: a sample problem"],
        "subject": "Sample subject",
        "approval": approval,
        "requester": "Alice",
        "why": "it says neither APPROVE nor REJECT",
        "approve_url": "https://help.example/approval/sample?choice=approve",
        "reject_url": "https://help.example/approval/sample?choice=reject",
        "activity": activity,
        "resolution": resolution,
    }


def _writable_dir(path: Path) -> Path | None:
    """None when `path` is, or can be made as, a directory we may write in; else the
    directory in the way (read-only, someone else's, or a file)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            writable = candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
            return None if writable else candidate
    return path


def state_paths(config: Config) -> list[tuple[str, Path, Path]]:
    """(key, path, the directory it needs to write in) for all the daemon writes: the
    secret (when it does not exist yet), the SQLite database, the attachment files, the
    delivery journal and the maildir."""
    paths = []
    secret = config.path(config.instance.secret_file)
    if not secret.exists():
        paths.append(("instance.secret_file", secret, secret.parent))
    prefix = "sqlite+aiosqlite:///"
    if config.database_url.startswith(prefix) and not config.database_url.endswith(":memory:"):
        database = Path(config.database_url.removeprefix(prefix))
        paths.append(("database.url", database, database.parent))
    for key, directory in (
        ("database.attachment_dir", config.path(config.database.attachment_dir)),
        ("outbox.journal", config.path(config.outbox.journal)),
    ):
        paths.append((key, directory, directory))
    if config.outbox.relay is None:
        maildir = config.path(config.outbox.maildir)
        paths.append(("outbox.maildir", maildir, maildir))
    return paths


def check_state_paths(config: Config) -> list[str]:
    """What `run` would fail to write stops the check, naming the key and the directory in
    the way. Returns the keys checked."""
    paths = state_paths(config)
    for key, path, directory in paths:
        blocker = _writable_dir(directory)
        if blocker is not None:
            user = pwd.getpwuid(os.geteuid()).pw_name
            raise ConfigError(
                config.source,
                key,
                f"{path} cannot be written: {blocker} is read-only or not writable by {user} "
                "(under systemd, leave it to the state directory)",
            )
    return [key for key, _, _ in paths]


def register(cli: click.Group) -> None:
    @cli.command()
    @click.pass_context
    def check(ctx: click.Context) -> None:
        """Validate the configuration, every rule, every template in every language, and that
        each catalog translates every message the templates use."""
        config = config_of(ctx)
        source = config.source if config.source.startswith("(") else Path(config.source).resolve()
        click.echo(f"checking {source}")
        written = check_state_paths(config)
        app = app_of(config)
        app.check_secret(create=False)  # check creates nothing; run makes the secret
        renderer = app.renderer
        used = [*renderer.used_messages(), *own_messages()]
        gaps = renderer.catalogs.gaps(used)
        for gap in gaps:
            click.echo(f"mailflow: {gap}", err=True)
        if gaps:
            ctx.exit(os.EX_CONFIG)
        rendered = 0
        for ticket_type in config.types:
            ticket = sample_ticket(ticket_type.name, ticket_type.default_status)
            for name in renderer.template_names():
                mail = TemplateMail(
                    template=name,
                    to=Recipient(Mailbox("Sam", "sam@example.org"), Role.CUSTOMER, 1),
                    purpose="check",
                    actor=Actor.system(),
                    message=sample_message(),
                    context=sample_context(),
                )
                context = app.mailer.context(ticket, mail)
                for language in renderer.languages:
                    speech = Speech(language, config.business_hours.timezone)
                    renderer.render(name, ticket_type.name, context, speech)
                    rendered += 1
        click.echo(f"configuration: ok ({len(config.types)} ticket types)")
        click.echo(f"state: ok ({config.instance.state_dir}; writable: {', '.join(written)})")
        click.echo(f"rules: ok ({len(app.rules.rules)} enabled)")
        click.echo(f"templates: ok ({rendered} renderings)")
        languages = ", ".join(renderer.languages)
        click.echo(f"catalogs: ok ({languages}; {len({m.id for m in used})} messages)")
