"""SMTP replies by name; no other module writes a status line."""

from __future__ import annotations

R250_OK = "250 OK"
# RFC 5321 §3.8: a server that is stopping says so, and closes the connection.
R421_SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
R451_TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
R550_NO_SUCH_USER = "550 5.1.1 No such mailbox here"
R552_TOO_BIG = "552 5.3.4 Message too big"
R554_NO_VALID_RECIPIENTS = "554 5.5.1 No valid recipients"


def r250_queued(inbound_id: int) -> str:
    return f"250 2.0.0 Queued as {inbound_id}"
