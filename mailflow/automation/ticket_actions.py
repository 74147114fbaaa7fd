"""Rule actions that change what a ticket is: its type, usergroup, project, custom fields,
due date, assignment to a group, and internal notes."""

from __future__ import annotations

from typing import Any

from mailflow.automation.actions import Action, ActionProblem, LoadScope, Result, RunScope, action
from mailflow.config import duration_or_none
from mailflow.db.models import ActorKind, Direction, Message
from mailflow.mail.addresses import is_valid_address
from mailflow.people import directory, usergroups
from mailflow.tickets import approvals, ops
from mailflow.tickets.events import Assigned, Event, ProjectChanged

STRATEGIES = ("fixed", "round_robin", "fewest_open")


def _word(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ActionProblem(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


@action("set_type")
def _set_type(value: Any, load: LoadScope) -> Action:
    name = _word(value, "set_type")
    known = [t.name for t in load.config.types]
    if name not in known:
        raise ActionProblem(f"set_type: {name!r} is not a ticket type ({', '.join(known)})")

    async def run(scope: RunScope) -> Result:
        new_type = scope.config.ticket_type(name)
        events = ops.change_type(
            scope.ticket,
            new_type,
            status=None,
            actor=scope.actor,
            now=scope.now,
            session=scope.session,
        )
        return Result(events)

    return run


@action("set_usergroup")
def _set_usergroup(value: Any, load: LoadScope) -> Action:
    name = _word(value, "set_usergroup")

    async def run(scope: RunScope) -> Result:
        usergroup = None
        if name != "nobody":
            usergroup = await usergroups.usergroup_named(scope.session, name)
            if usergroup is None:
                scope.note("rule_action_skipped", reason=f"no usergroup {name}")
                return Result()
        return Result(
            ops.set_usergroup(
                scope.ticket, usergroup, actor=scope.actor, now=scope.now, session=scope.session
            )
        )

    return run


@action("set_project")
def _set_project(value: Any, load: LoadScope) -> Action:
    name = _word(value, "set_project")
    if len(name) > 100:
        raise ActionProblem("set_project: a project name has at most 100 characters")
    project = None if name == "none" else name

    async def run(scope: RunScope) -> Result:
        old = scope.ticket.project
        if old == project:
            return Result()
        scope.ticket.project = project
        scope.note("project_changed", old=old, new=project)
        return Result([ProjectChanged(scope.ticket.id, old, project)])

    return run


@action("set_field")
def _set_field(value: Any, load: LoadScope) -> Action:
    if not isinstance(value, dict) or set(value) != {"name", "value"}:
        raise ActionProblem("set_field takes {name: FIELD, value: VALUE}")
    declared = {f.name: f for f in load.config.ticket_fields}
    name = value["name"]
    if name not in declared:
        known = ", ".join(declared) or "none; declare them as [[ticket_fields]]"
        raise ActionProblem(f"set_field: no ticket field {name!r}; known: {known}")
    checked: str | None = None  # value: null clears the field
    if value["value"] is not None:
        try:
            checked = usergroups.checked_value(declared[name], str(value["value"]))
        except ValueError as exc:
            raise ActionProblem(f"set_field: {exc}") from None

    async def run(scope: RunScope) -> Result:
        old = scope.ticket.fields.get(name)
        if old != checked:
            kept = {key: v for key, v in scope.ticket.fields.items() if key != name}
            scope.ticket.fields = kept if checked is None else {**kept, name: checked}
            scope.note("field_changed", field=name, old=old, new=checked)
        return Result()

    return run


@action("set_due")
def _set_due(value: Any, load: LoadScope) -> Action:
    """A due date this long from now (`4h`, `2d`), or `none`."""
    delay = None if value == "none" else duration_or_none(value)
    if value != "none" and delay is None:
        raise ActionProblem(f"set_due: {value!r} is not a duration such as 4h or 2d, or none")

    async def run(scope: RunScope) -> Result:
        due = scope.now + delay if delay is not None else None
        if scope.ticket.due_at != due:
            scope.ticket.due_at = due
            scope.note("due_changed", due=due.isoformat() if due else None)
        return Result()

    return run


@action("assign_group")
def _assign_group(value: Any, load: LoadScope) -> Action:
    """{group: NAME, strategy: fixed | round_robin | fewest_open}: the group, and with a
    strategy other than fixed, one of its members."""
    spec = {"group": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or set(spec) - {"group", "strategy"} or "group" not in spec:
        raise ActionProblem("assign_group takes NAME or {group: NAME, strategy: STRATEGY}")
    name = _word(spec["group"], "assign_group.group")
    strategy = spec.get("strategy", "fixed")
    if strategy not in STRATEGIES:
        raise ActionProblem(
            f"assign_group.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}"
        )

    async def run(scope: RunScope) -> Result:
        group = await directory.find_group(scope.session, name)
        if group is None:
            scope.note("rule_action_skipped", reason=f"no group {name}")
            return Result()
        events = ops.assign_group(
            scope.ticket, group, actor=scope.actor, now=scope.now, session=scope.session
        )
        agent = None
        if strategy == "round_robin":
            agent = await directory.next_in_rotation(scope.session, group)
        elif strategy == "fewest_open":
            agent = await directory.least_loaded(scope.session, scope.config, group)
        if agent is not None:
            events += ops.assign(
                scope.ticket, agent, actor=scope.actor, now=scope.now, session=scope.session
            )
        return Result(_one_assignment(events))

    return run


def _one_assignment(events: list[Event]) -> list[Event]:
    """A group and one of its members, given in one act, are one `assigned` event: the rules
    tell the member once that it is theirs, and the others that it is their group's."""
    assigned = [e for e in events if isinstance(e, Assigned)]
    if len(assigned) < 2:
        return events
    first, last = assigned[0], assigned[-1]
    return [
        Assigned(
            first.ticket_id,
            first.old_agent_id,
            last.new_agent_id,
            first.old_group_id,
            last.new_group_id,
        )
    ]


@action("add_note")
def _add_note(value: Any, load: LoadScope) -> Action:
    text = _word(value, "add_note")

    async def run(scope: RunScope) -> Result:
        note = Message(
            ticket_id=scope.ticket.id,
            direction=Direction.IN,
            author_kind=ActorKind.AUTOMATION,
            public=False,
            from_address="",
            from_name=scope.actor.label,
            subject="",
            text=text,
            full_text=text,
            created_at=scope.now,
            attachments=[],
        )
        scope.session.add(note)
        scope.note("note_added", text=text[:200])
        return Result()

    return run


@action("request_approval")
def _request_approval(value: Any, load: LoadScope) -> Action:
    """{approver: ADDRESS, reason: TEXT}: the approver gets the Accept and Reject links."""
    if (
        not isinstance(value, dict)
        or set(value) - {"approver", "reason"}
        or "approver" not in value
    ):
        raise ActionProblem("request_approval takes {approver: ADDRESS, reason: TEXT}")
    approver = _word(value["approver"], "request_approval.approver")
    if not is_valid_address(approver):
        raise ActionProblem(f"request_approval.approver: {approver!r} is not an email address")
    reason = str(value.get("reason", ""))

    async def run(scope: RunScope) -> Result:
        await approvals.request(
            scope.session,
            scope.mailer,
            scope.ticket,
            approver=approver,
            reason=reason,
            requester=approvals.Requester(scope.actor.label),
            actor=scope.actor,
            now=scope.now,
        )
        return Result()

    return run
