"""Parsing a large message without holding its large attachments in memory several times.

The email package turns every body into a list of lines, then a string, then bytes: for an
18 MB attachment, a few hundred megabytes. Here each large base64 body of a non-text part is
cut out of the message before the email package sees it, replaced by a placeholder, and the
ParsedAttachment that comes back says where the body lies in the raw message (`body`), for
the caller to decode straight into a file. If anything does not add up (a placeholder that
ends up inside a forwarded message, say), the message is parsed whole instead."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import replace
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailflow.mail.parse import ParsedMessage, parse

# A body this large (base64 text) is left in the raw message.
CUT_ABOVE = 16 * 1024
# Enough to find the parts: the declared boundaries, and where each part's headers end.
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.I)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
MAX_BOUNDARIES = 50
# Parts whose body is needed whole, or whose own parts are what matters.
_KEPT_TYPES = ("text", "multipart", "message")
_TNEF = ("application/ms-tnef", "application/vnd.ms-tnef")


def parse_large(raw: bytes) -> ParsedMessage:
    """parse(), with large base64 attachments left where they are (`body` set, no data)."""
    cuts = _cuts(raw)
    if not cuts:
        return parse(raw)
    nonce = secrets.token_hex(8)
    tokens = {f"mailflow-cut-{nonce}-{n}".encode(): cut for n, cut in enumerate(cuts)}
    parsed = parse(_skeleton(raw, tokens))
    found = {a.data for a in parsed.attachments if a.data in tokens}
    if found != set(tokens):  # a placeholder landed elsewhere: take the slow, sure way
        return parse(raw)
    attachments = tuple(
        replace(a, data=b"", body=tokens[a.data]) if a.data in tokens else a
        for a in parsed.attachments
    )
    return replace(parsed, attachments=attachments)


def _skeleton(raw: bytes, tokens: dict[bytes, tuple[int, int]]) -> bytes:
    pieces, position = [], 0
    for token, (start, end) in tokens.items():
        pieces += [raw[position:start], base64.b64encode(token), b"\r\n"]
        position = end
    pieces.append(raw[position:])
    return b"".join(pieces)


def _cuts(raw: bytes) -> list[tuple[int, int]]:
    """Where the large base64 bodies of non-text parts lie: (start, end), in order."""
    boundaries = {b for m in _BOUNDARY.finditer(raw) for b in m.groups() if b}
    if len(boundaries) > MAX_BOUNDARIES:
        return []  # each is a pass over the message; such a message is parsed whole
    delimiters = _delimiters(raw, boundaries)
    starts = [0] + [part_start for _, part_start in delimiters]
    ends = [line_start for line_start, _ in delimiters] + [len(raw)]
    cuts = [_body(raw, start, end) for start, end in zip(starts, ends, strict=True)]
    return [cut for cut in cuts if cut is not None]


def _delimiters(raw: bytes, boundaries: set[bytes]) -> list[tuple[int, int]]:
    """Each boundary line: where it starts (with the line break before it, which belongs to
    it, RFC 2046 §5.1.1) and where the part after it starts."""
    found = []
    for boundary in boundaries:
        marker = b"--" + boundary
        position = raw.find(marker)
        while position >= 0:
            line_end = raw.find(b"\n", position)
            line_end = len(raw) if line_end < 0 else line_end + 1
            rest = raw[position + len(marker) : line_end].rstrip(b"\r\n \t")
            at_line_start = position == 0 or raw[position - 1] == ord("\n")
            if at_line_start and rest in (b"", b"--"):
                before = 2 if raw[position - 2 : position] == b"\r\n" else 1
                found.append((max(position - before, 0), line_end))
            position = raw.find(marker, line_end)
    return sorted(found)


def _body(raw: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The body of the part in raw[start:end], if it is to be cut: large, base64, not text."""
    if end - start < CUT_ABOVE:
        return None
    blank = _BLANK_LINE.search(raw, start, min(end, start + 64 * 1024))
    if blank is None:
        return None
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[start : blank.start()])
    content_type = headers.get_content_type()
    encoding = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding != "base64" or content_type.split("/")[0] in _KEPT_TYPES:
        return None
    if content_type in _TNEF or "winmail.dat" in str(headers.get_filename("")).lower():
        return None  # opened up when stored, which needs it in memory
    return (blank.end(), end) if end - blank.end() >= CUT_ABOVE else None
