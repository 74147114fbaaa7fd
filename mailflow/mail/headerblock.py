"""Damaged header blocks, read the way tolerant mail readers read them: a banner or blank
lines before the headers, a stray line among them, a space before a colon. The email package
ends the headers at the first line that is not one, and the From and Subject after it are lost."""

from __future__ import annotations

import re

_HEADER = re.compile(rb"^([\x21-\x39\x3b-\x7e]+):")
_SPACED = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:")
_CONTINUATION = re.compile(rb"^[ \t]+\S")
_BLANK = re.compile(rb"^[ \t]*\r?$")
_MBOX_FROM = b"From "
# Names that prove a line is a header, not a body line with a colon ("Note: ...").
_KNOWN = re.compile(
    rb"^(from|to|cc|bcc|subject|date|message-id|in-reply-to|references|reply-to|sender|"
    rb"return-path|received|mime-version|content-[a-z-]+|delivered-to|x-[a-z0-9-]+|"
    rb"list-[a-z-]+|dkim-signature|authentication-results|arc-[a-z-]+|thread-[a-z]+|"
    rb"importance|priority|precedence|auto-submitted|organization|user-agent|resent-[a-z-]+)$",
    re.I,
)
MAX_BANNER_LINES = 3
MAX_HEADER_SCAN = 256 * 1024  # a header block longer than this is not one to repair


def _known_header(line: bytes) -> bool:
    match = _HEADER.match(line) or _SPACED.match(line)
    return bool(match and _KNOWN.match(match.group(1)))


def looks_damaged(raw: bytes) -> bool:
    """A cheap first look: does the message not start with a header?"""
    first = raw[:1000].split(b"\n", 1)[0]
    return not (_HEADER.match(first) or first.startswith(_MBOX_FROM))


def _shown(line: bytes) -> str:
    return line.strip().decode("utf-8", "replace")[:60]


def repair(raw: bytes) -> tuple[bytes, list[str]] | None:
    """The message with its header block mended, and what was wrong; None if nothing was."""
    lines = raw[:MAX_HEADER_SCAN].split(b"\n")
    defects: list[str] = []
    start = 0
    while start < len(lines) - 1 and _BLANK.match(lines[start]):
        start += 1
    if start:
        defects.append(f"{start} blank lines before the headers")
    window = range(start, min(start + MAX_BANNER_LINES + 1, len(lines)))
    first = next((i for i in window if _known_header(lines[i])), start)
    if first > start and not (_HEADER.match(lines[start]) or lines[start].startswith(_MBOX_FROM)):
        defects += [f"banner before the headers: {_shown(line)!r}" for line in lines[start:first]]
        start = first
    kept, end = _mend(lines, start, defects)
    if not defects or not kept:
        return None
    body = b"\n".join(lines[end:])
    rest = raw[len(raw[:MAX_HEADER_SCAN]) :]
    return b"\n".join(kept) + b"\n" + body + rest, defects


def _mend(lines: list[bytes], start: int, defects: list[str]) -> tuple[list[bytes], int]:
    """The header lines from `start`, mended, and the index of the line the body starts at."""
    kept: list[bytes] = []
    index = start
    while index < len(lines) and not _BLANK.match(lines[index]):
        line = lines[index]
        spaced = _SPACED.match(line)
        if _HEADER.match(line) or (_CONTINUATION.match(line) and kept):
            kept.append(line)
        elif spaced:
            name = spaced.group(1)
            defects.append(f"space before the colon of {name.decode('ascii')}")
            kept.append(name + b":" + line[spaced.end() :])
        elif _header_follows(lines, index + 1):
            defects.append(f"stray line among the headers: {_shown(line)!r}")
        else:
            break  # the body starts here, without its blank line; as the email package reads it
        index += 1
    return kept, index


def _header_follows(lines: list[bytes], index: int) -> bool:
    """Whether a known header comes before the blank line that ends the block."""
    for line in lines[index:]:
        if _BLANK.match(line):
            return False
        if _known_header(line):
            return True
    return False
