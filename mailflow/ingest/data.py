"""Reading an SMTP DATA section into one buffer. aiosmtpd keeps a bytearray for every line,
which holds three to four times the message in memory before the handler sees it; this keeps
it in chunks of a megabyte, joined once."""

from __future__ import annotations

import asyncio

from mailflow.ingest import replies

CHUNK = 1 << 20
END = b".\r\n"


async def read_data(
    reader: asyncio.StreamReader, size_limit: int | None, line_limit: int
) -> bytes | str:
    """The message, dot-unstuffed (RFC 5321 §4.5.2); or, once all of it has been read
    (§4.2.5), the refusal to send: too much data, or a line too long. The first problem
    found is the one answered."""
    chunks: list[bytes] = []
    pending = bytearray()
    size = 0
    refusal: str | None = None
    line_start = True
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:  # longer than the reader's limit
            refusal = refusal or replies.R500_LINE_TOO_LONG
            await reader.read(exc.consumed)
            line_start = False
            continue
        if line_start and line == END:
            break
        size += len(line)
        if not line_start or len(line) > line_limit:
            refusal = refusal or replies.R500_LINE_TOO_LONG
        elif size_limit and size > size_limit:
            refusal = refusal or replies.R552_TOO_MUCH_DATA
        line_start = True
        if refusal:
            chunks, pending = [], bytearray()  # read on, keep nothing
            continue
        pending += line[1:] if line.startswith(b".") else line
        if len(pending) >= CHUNK:
            chunks.append(bytes(pending))
            pending.clear()
    if refusal:
        return refusal
    chunks.append(bytes(pending))
    return b"".join(chunks)
