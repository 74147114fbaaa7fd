"""Many ticket types side by side, each with its own address, statuses and default."""

from __future__ import annotations

from typing import Any

from mailflow.db.models import Ticket
from tests.conftest import RelaySink, StartDaemon
from tests.support import all_rows, build_message, smtp_send

KINDS = [
    "billing",
    "sales",
    "abuse",
    "press",
    "jobs",
    "legal",
    "privacy",
    "partners",
    "returns",
    "security",
    "ideas",
    "support",
]


def _types() -> list[dict[str, Any]]:
    return [
        {
            "name": kind,
            "addresses": [f"{kind}@example.com"],
            "display_name": kind.title(),
            "statuses": [f"{kind}-new", "waiting", "done"],
            "closed": ["done"],
            "default_status": f"{kind}-new",
        }
        for kind in KINDS
    ]


async def test_a_dozen_types_each_take_their_own_mail(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Any
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "reply.yaml").write_text(
        "rules:\n  - name: auto-reply\n    trigger: ticket_created\n"
        "    do: [send: {template: customer/auto_reply, to: customer}]\n"
    )
    running = await start_daemon({"types": _types(), "rules": {"dir": str(rules)}})
    for kind in reversed(KINDS):
        sender = f"someone-{kind}@customer.test"  # one each: automatic mail is capped per address
        message = build_message(sender=sender, to=f"{kind}+x@example.com", subject=f"About {kind}")
        assert (await smtp_send(running.port, message, mail_from=sender))[0] == 250
    tickets = await all_rows(running.app, Ticket)
    assert sorted((t.type, t.status, t.subject) for t in tickets) == sorted(
        (kind, f"{kind}-new", f"About {kind}") for kind in KINDS
    )
    replies = await relay_sink.wait_for(len(KINDS))
    senders = {str(r.message["From"]) for r in replies}
    assert senders == {f"{kind.title()} <{kind}@example.com>" for kind in KINDS}
