"""`mailflow rules`: what the rules are, and what they would do with a message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli.common import Config, app_of, application, config_of, run
from mailflow.cli.output import format_option, render
from mailflow.db.models import History, InboundMessage, OutboxMessage
from mailflow.ingest.accept import handle, inbound_row
from mailflow.ingest.envelope import Channel, Envelope
from mailflow.mail.parse import parse
from mailflow.pipeline.intake import Intake, Quarantine

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RuleRow:
    name: str
    trigger: str
    types: str
    file: str


class _DryRun(Exception):
    """Raised to roll the transaction back once the effects have been read."""


def register(cli: click.Group) -> None:
    @cli.group("rules")
    def rules_group() -> None:
        """The workflow rules."""

    @rules_group.command("list")
    @format_option
    @click.pass_context
    def list_rules(ctx: click.Context, fmt: str) -> None:
        """Every enabled rule, in the order it runs (read from the files, not the database)."""
        rules = app_of(config_of(ctx)).rules.rules
        rows = (
            RuleRow(
                rule.name,
                rule.trigger,
                ", ".join(sorted(rule.types)) if rule.types else "all",
                Path(rule.file).name,
            )
            for rule in rules
        )
        render(rows, fmt, ("name", "trigger", "types", "file"))

    @rules_group.command("test")
    @click.argument("message", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--to", "rcpt", help="Envelope recipient (default: the message's To and Cc).")
    @click.option("--from", "mail_from", default="", help="Envelope sender.")
    @click.pass_context
    def test(ctx: click.Context, message: Path, rcpt: str | None, mail_from: str) -> None:
        """Which rules would fire for MESSAGE and what they would do. Changes nothing."""
        click.echo(run(_dry_run(config_of(ctx), message.read_bytes(), rcpt, mail_from)))


async def _dry_run(config: Config, raw: bytes, rcpt: str | None, mail_from: str) -> str:
    lines: list[str] = []
    async with application(config) as app:
        now = app.clock.now()
        envelope = Envelope(Channel.INJECT, mail_from, (rcpt,) if rcpt else (), now)
        parsed = parse(raw)
        try:
            async with app.db.transaction() as session:
                before = {
                    model: await _last_id(session, model) for model in (History, OutboxMessage)
                }
                inbound = inbound_row(raw, envelope, parsed)
                session.add(inbound)
                await session.flush()
                intake = Intake(inbound=inbound, parsed=parsed, envelope=envelope, now=now)
                try:
                    await handle(app, session, intake)
                except Quarantine as exc:
                    lines.append(f"would be quarantined: {exc}")
                await session.flush()
                history = await _since(session, History, before[History])
                mails = await _since(session, OutboxMessage, before[OutboxMessage])
                lines += _effects(inbound, intake, history, mails)
                raise _DryRun
        except _DryRun:
            pass
    lines.append("(a dry run: nothing was stored or sent)")
    return "\n".join(lines)


async def _last_id(session: AsyncSession, model: type[History] | type[OutboxMessage]) -> int:
    return int(await session.scalar(select(func.max(model.id))) or 0)


async def _since(session: AsyncSession, model: type[T], after: int) -> list[T]:
    rows = await session.scalars(
        select(model).where(model.id > after).order_by(model.id)  # type: ignore[attr-defined]
    )
    return list(rows.all())


def _effects(
    inbound: InboundMessage, intake: Intake, history: list[History], mails: list[OutboxMessage]
) -> list[str]:
    lines = ["Decisions", *(f"  {d}" for d in intake.decisions)]
    if inbound.reason:
        lines.append(f"  -> {inbound.state.value}: {inbound.reason}")
    lines.append("Rules and changes")
    for entry in history:
        details = ", ".join(f"{k}={v}" for k, v in entry.details.items())
        lines.append(f"  {entry.actor:<40} {entry.action}  {details}".rstrip())
    lines.append("Mail it would send")
    lines += [f"  {m.purpose} → {', '.join(m.rcpt_tos)}" for m in mails] or ["  (none)"]
    return lines
