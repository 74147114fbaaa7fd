"""The ordered steps from a parsed message to ticket changes: the policy table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mailflow.pipeline import acting, apply, conversation, hygiene, identity, routing
from mailflow.pipeline.intake import Disposition, Intake, Services

Step = Callable[[Services, Intake], Awaitable[Disposition]]

# Read top to bottom: this is what happens to every message. A step ends the message's
# journey by returning STOP (its state and reason say why) or raising Quarantine.
STEPS: tuple[tuple[str, Step], ...] = (
    ("loop", hygiene.loop),  # our own mail coming back
    ("duplicate", hygiene.duplicate),  # the same message delivered again
    ("automatic", hygiene.automatic),  # bounces, auto-replies, lists: no answers to machines
    ("sender", identity.sender),  # From, else the envelope sender
    ("route", routing.route),  # which ticket type
    ("identity", identity.identify),  # agent (signed or authenticated) or customer
    ("thread", conversation.find_ticket),  # which ticket, if any
    ("verify", identity.verify),  # a sender without proof of who they are leaves a note
    ("commands", acting.read_commands),  # an agent's or supervisor's #commands, all or none
    ("apply", apply.apply),  # open or add, relay an agent's answer
)


async def process(services: Services, intake: Intake) -> None:
    for _name, step in STEPS:
        if await step(services, intake) is Disposition.STOP:
            return
