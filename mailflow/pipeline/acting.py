"""The pipeline step for people acting by mail on a ticket: an agent's or supervisor's
commands (checked all together, applied after the rules), an approver's APPROVE or REJECT."""

from __future__ import annotations

import re

from mailflow.db.models import InboundState, Ticket
from mailflow.db.record import Approval
from mailflow.mail.compose import AutoSubmitted
from mailflow.mail.quotes import split_reply, written_now
from mailflow.outbox.mailer import Recipient, TemplateMail
from mailflow.people.permissions import Role
from mailflow.pipeline.commands import Actor, Context, check_all, split_commands
from mailflow.pipeline.intake import Disposition, Intake, Services
from mailflow.tickets import approvals, ops
from mailflow.tokens import Role as TokenRole


async def read_commands(services: Services, intake: Intake) -> Disposition:
    """Check the commands of an agent or supervisor writing about a ticket. They are applied
    after the rules that the message itself triggers, so that they have the last word."""
    ticket = intake.ticket
    if intake.approval is not None and ticket is not None and intake.automatic is None:
        return await _approval_reply(services, intake, intake.approval)
    person = intake.agent or intake.supervisor
    if ticket is None or person is None or intake.automatic is not None:
        return Disposition.CONTINUE
    commands, rest = split_commands(intake.parsed.text)
    if not commands:
        return Disposition.CONTINUE
    actor = (
        Actor(Role(intake.agent.role.value), agent=intake.agent)
        if intake.agent
        else Actor(Role.SUPERVISOR, supervisor=intake.supervisor)
    )
    written = written_now(rest)
    intake.body = rest if written else ""  # a bare quote under commands is no answer
    context = Context(services, intake, ticket, actor, written=written)
    appliers, problems = await check_all(context, commands)
    if problems:
        await _refuse(services, intake, ticket, actor, problems)
        return intake.finish(InboundState.STORED_ONLY, "commands refused: " + "; ".join(problems))
    intake.commands = appliers
    intake.command_names = {c.name for c in commands}
    intake.decide("commands", ", ".join(c.line for c in commands))
    return Disposition.CONTINUE


# "Approve? I'd rather not" asks; it does not decide.
_ANSWER = re.compile(r"^\s*(approved?|reject(?:ed)?)(?![\w?])[\s:.!-]*", re.IGNORECASE)


async def _approval_reply(services: Services, intake: Intake, approval: Approval) -> Disposition:
    """The approver answers the request by mail: APPROVE or REJECT on the first line, and a
    comment below it if they like. Whatever they write goes on the ticket (see apply)."""
    text = split_reply(intake.parsed.text).new
    match = _ANSWER.match(text)
    if match is None:
        return _undecided(intake, "it says neither APPROVE nor REJECT")
    if not approvals.open_to_decision(approval, intake.now):
        return _undecided(intake, f"approval {approval.id} is {approval.state.value} already")
    decision = approvals.Decision(
        approve=match.group(1).lower().startswith("approve"),
        via="email",
        comment=text[match.end() :].strip()[:5000],
        client=approval.approver,
    )
    intake.events += await approvals.decide(
        services.session, services.mailer, approval, decision, intake.now
    )
    intake.decide("approval", f"approval {approval.id}: {approval.state.value} by email")
    return Disposition.CONTINUE


def _undecided(intake: Intake, why: str) -> Disposition:
    intake.undecided = why
    intake.decide("approval", f"decides nothing: {why}")
    return Disposition.CONTINUE


async def _refuse(
    services: Services, intake: Intake, ticket: Ticket, actor: Actor, problems: list[str]
) -> None:
    """Nothing of the message is applied; its sender hears exactly why. The answer is
    automatic mail like any other: capped, and never sent to a machine."""
    assert intake.sender is not None
    now = intake.now
    ops.record(
        services.session,
        ticket,
        actor.history,
        "commands_refused",
        now,
        problems=problems,
        message_id=intake.parsed.message_id,
    )
    role, person = (
        (TokenRole.AGENT, actor.agent.id)
        if actor.agent
        else (TokenRole.SUPERVISOR, actor.supervisor.id if actor.supervisor else 0)
    )
    mail = TemplateMail(
        template="agent/command_error",
        to=Recipient(intake.sender, role, person),
        purpose="command_error",
        actor=ops.Actor.system("commands"),
        answering_id=intake.parsed.message_id,
        auto_submitted=AutoSubmitted.AUTO_REPLIED,
        context={"problems": problems, "subject": intake.parsed.subject},
    )
    await services.mailer.send(services.session, ticket, mail, now)
    intake.decide("commands", "refused: " + "; ".join(problems))
