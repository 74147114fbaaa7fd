"""SMTP replies by name; no other module writes a status line."""

from __future__ import annotations

R250_OK = "250 OK"
R354_START_DATA = "354 End data with <CR><LF>.<CR><LF>"
R501_DATA_SYNTAX = "501 Syntax: DATA"
R503_NEED_RCPT = "503 Error: need RCPT command"
# aiosmtpd's own words for these, which LMTP's reply-per-recipient code looks for.
R500_LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
R552_TOO_MUCH_DATA = "552 Error: Too much mail data"
# RFC 5321 §3.8: a server that is stopping says so, and closes the connection.
R421_SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
R451_TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
R550_NO_SUCH_USER = "550 5.1.1 No such mailbox here"
R552_TOO_BIG = "552 5.3.4 Message too big"
R554_NO_VALID_RECIPIENTS = "554 5.5.1 No valid recipients"


def r250_queued(inbound_id: int) -> str:
    return f"250 2.0.0 Queued as {inbound_id}"
