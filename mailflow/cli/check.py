"""`mailflow check`: configuration, rules and templates, without starting anything."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import click

from mailflow.app import App
from mailflow.cli.common import config_of
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
        "approve_url": "https://help.example/approval/sample?choice=approve",
        "reject_url": "https://help.example/approval/sample?choice=reject",
        "activity": activity,
        "resolution": resolution,
    }


def register(cli: click.Group) -> None:
    @cli.command()
    @click.pass_context
    def check(ctx: click.Context) -> None:
        """Validate the configuration, every rule, every template in every language, and that
        each catalog translates every message the templates use."""
        config = config_of(ctx)
        app = App(config)
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
        click.echo(f"configuration: {config.source}: ok ({len(config.types)} ticket types)")
        click.echo(f"rules: ok ({len(app.rules.rules)} enabled)")
        click.echo(f"templates: ok ({rendered} renderings)")
        languages = ", ".join(renderer.languages)
        click.echo(f"catalogs: ok ({languages}; {len({m.id for m in used})} messages)")
