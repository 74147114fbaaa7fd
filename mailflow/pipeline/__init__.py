"""The ordered steps from a parsed message to ticket changes: the policy table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mailflow.pipeline import apply, conversation, identity, routing
from mailflow.pipeline.intake import Intake, Services

Step = Callable[[Services, Intake], Awaitable[None]]

# Read top to bottom: this is what happens to every message. A step that must stop the
# message raises Quarantine; hygiene steps (loops, bounces, duplicates) slot in first.
STEPS: tuple[tuple[str, Step], ...] = (
    ("sender", identity.sender),
    ("route", routing.route),
    ("identity", identity.identify),
    ("thread", conversation.find_ticket),
    ("apply", apply.apply),
)


async def process(services: Services, intake: Intake) -> None:
    for _name, step in STEPS:
        await step(services, intake)
