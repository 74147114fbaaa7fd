"""`mailflow usergroup`: customers' organisations, their members, supervisors and fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import click
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli import customers
from mailflow.cli.common import Config, administrator, config_of, in_transaction
from mailflow.cli.lists import list_options, print_page
from mailflow.config import PERSONAL_SETTINGS
from mailflow.db.models import Customer
from mailflow.db.paging import AnyRow, Keyset
from mailflow.db.people import Usergroup, UsergroupMember
from mailflow.mail.addresses import Mailbox, is_valid_address, normalise
from mailflow.people import directory, languages, usergroups
from mailflow.tickets import ops


@dataclass(frozen=True, slots=True)
class UsergroupRow:
    name: str
    title: str
    members: int
    supervisors: str
    fields: str


async def _named(session: AsyncSession, name: str) -> Usergroup:
    usergroup = await usergroups.usergroup_named(session, name)
    if usergroup is None:
        raise directory.NotFound(f"no usergroup {name!r}")
    return usergroup


def _fields(config: Config, assignments: tuple[str, ...]) -> dict[str, str]:
    """NAME=VALUE pairs, each checked against the field declared in the configuration."""
    declared = {field.name: field for field in config.people.usergroup_fields}
    values: dict[str, str] = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals:
            raise click.BadParameter(f"{assignment!r} is not NAME=VALUE")
        if name not in declared:
            known = ", ".join(declared) or "none; declare them in [[people.usergroup_fields]]"
            raise click.BadParameter(f"no usergroup field {name!r}; known: {known}")
        try:
            values[name] = usergroups.checked_value(declared[name], value) if value else ""
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return values


def register(cli: click.Group) -> None:
    @cli.group("usergroup")
    def usergroup_group() -> None:
        """Customers' organisations: members, supervisors and custom fields."""

    @usergroup_group.command("create")
    @click.argument("name")
    @click.option("--title", default="", help="The organisation's name as people write it.")
    @click.option("--notify-supervisors/--quiet-supervisors", default=True, show_default=True)
    @click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE")
    @click.pass_context
    def create(
        ctx: click.Context,
        name: str,
        title: str,
        notify_supervisors: bool,
        assignments: tuple[str, ...],
    ) -> None:
        """NAME is short and lower-case: support+NAME@ and #usergroup NAME use it."""
        if not name.isascii() or not name.replace("-", "").replace("_", "").isalnum():
            raise click.BadParameter("letters, digits, - and _ only", param_hint="NAME")

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            if await usergroups.usergroup_named(session, name):
                raise directory.NotFound(f"usergroup {name!r} exists already")
            session.add(
                Usergroup(
                    name=name.lower(),
                    title=title,
                    created_at=now,
                    notify_supervisors=notify_supervisors,
                    fields=_fields(config, assignments),
                )
            )

        in_transaction(ctx, work)
        click.echo(f"created usergroup {name.lower()}")

    @usergroup_group.command("add-member")
    @click.argument("name")
    @click.argument("email")
    @click.option("--person", "person_name", default="", help="The member's name.")
    @click.option("--supervisor", is_flag=True, help="Sees and acts on the group's tickets.")
    @click.option(
        "--default",
        "is_default",
        is_flag=True,
        help="Their usergroup for new tickets, when they belong to several.",
    )
    @click.pass_context
    def add_member(
        ctx: click.Context,
        name: str,
        email: str,
        person_name: str,
        supervisor: bool,
        is_default: bool,
    ) -> None:
        """Add a customer (created if new), or change their membership."""
        if not is_valid_address(email):
            raise click.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL")

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            usergroup = await _named(session, name)
            customer = await ops.customer_for(session, Mailbox(person_name, normalise(email)), now)
            member = await session.scalar(
                select(UsergroupMember).where(
                    UsergroupMember.usergroup_id == usergroup.id,
                    UsergroupMember.customer_id == customer.id,
                )
            )
            if member is None:
                member = UsergroupMember(
                    usergroup_id=usergroup.id, customer_id=customer.id, created_at=now
                )
                session.add(member)
            member.supervisor, member.is_default = supervisor, is_default
            if is_default:
                await session.execute(
                    update(UsergroupMember)
                    .where(
                        UsergroupMember.customer_id == customer.id,
                        UsergroupMember.usergroup_id != usergroup.id,
                    )
                    .values(is_default=False)
                )

        in_transaction(ctx, work)
        role = "supervisor" if supervisor else "member"
        click.echo(f"usergroup {name}: {normalise(email)} is a {role}")

    @usergroup_group.command("set")
    @click.argument("name")
    @click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
    @click.pass_context
    def set_fields(ctx: click.Context, name: str, assignments: tuple[str, ...]) -> None:
        """Set custom fields, or the language and timezone of its members (FIELD= with
        nothing after it clears one)."""
        own = [a for a in assignments if a.partition("=")[0] in PERSONAL_SETTINGS]
        settings = customers.checked(config_of(ctx), own)
        assignments = tuple(a for a in assignments if a not in own)

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            usergroup = await _named(session, name)
            merged = {**usergroup.fields, **_fields(config, assignments)}
            usergroup.fields = {key: value for key, value in merged.items() if value}
            await languages.set_language(session, usergroup, administrator(), now, **settings)

        in_transaction(ctx, work)
        click.echo(f"usergroup {name}: fields set")

    @usergroup_group.command("list")
    @list_options
    @click.pass_context
    def list_usergroups(ctx: click.Context, fmt: str, limit: int, after: str | None) -> None:
        """List usergroups, by name, with how many members and who supervises."""
        member = UsergroupMember.usergroup_id == Usergroup.id
        members = select(func.count()).where(member).scalar_subquery()
        supervisors = (
            select(func.aggregate_strings(Customer.email, ","))
            .join(UsergroupMember, UsergroupMember.customer_id == Customer.id)
            .where(member, UsergroupMember.supervisor)
            .scalar_subquery()
        )
        query = select(
            Usergroup.name,
            Usergroup.title,
            Usergroup.fields,
            members.label("members"),
            supervisors.label("supervisors"),
        )

        def row(found: AnyRow) -> UsergroupRow:
            heads = sorted(found.supervisors.split(",")) if found.supervisors else []
            fields = "; ".join(f"{k}={v}" for k, v in sorted(found.fields.items()))
            return UsergroupRow(found.name, found.title, found.members, ", ".join(heads), fields)

        columns = ("name", "title", "members", "supervisors", "fields")
        order = Keyset((Usergroup.name,))
        print_page(config_of(ctx), query, order, row, columns, fmt=fmt, limit=limit, after=after)
