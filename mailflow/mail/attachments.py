"""Attachments as we keep them: safe file names, and the files inside winmail.dat opened."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import replace

from tnefparse import TNEF

from mailflow.mail.parse import ParsedAttachment

MAX_NAME_BYTES = 200
MAX_HEADER_VALUE = 255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """No directories, no control or reserved characters, no leading dots, at most 200 bytes
    of UTF-8 with the extension kept."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if not name or set(name) <= {"_", " "}:
        return fallback
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode()) > 16:
        stem, extension = name, ""
    room = MAX_NAME_BYTES - len(extension.encode()) - (1 if extension else 0)
    shortened = stem.encode()[:room].decode("utf-8", "ignore").rstrip()
    return f"{shortened}.{extension}" if extension else shortened


def is_tnef(attachment: ParsedAttachment) -> bool:
    return attachment.content_type == "application/ms-tnef" or (
        attachment.filename.lower() == "winmail.dat"
    )


def expand_tnef(attachment: ParsedAttachment) -> list[ParsedAttachment]:
    """The files inside an Outlook winmail.dat; the original when it cannot be read."""
    try:
        tnef = TNEF(attachment.data)
        names = [
            safe_filename(_text(item.long_filename() or item.name)) for item in tnef.attachments
        ]
        found = [
            ParsedAttachment(filename=name, content_type=_guess_type(name), data=bytes(item.data))
            for name, item in zip(names, tnef.attachments, strict=True)
            if item.data
        ]
    except Exception:  # tnefparse on a damaged file: keep winmail.dat itself
        return [attachment]
    return found or [attachment]


def _guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _text(name: object) -> str:
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace").rstrip("\x00")
    return str(name or "").rstrip("\x00")


def prepared(attachments: tuple[ParsedAttachment, ...]) -> list[ParsedAttachment]:
    """What to store: TNEF opened up, every name made safe."""
    result: list[ParsedAttachment] = []
    for attachment in attachments:
        for item in expand_tnef(attachment) if is_tnef(attachment) else [attachment]:
            result.append(
                replace(
                    item,
                    filename=safe_filename(item.filename),
                    # Values that would not fit their columns are not worth keeping.
                    content_type=item.content_type
                    if len(item.content_type) <= MAX_HEADER_VALUE
                    else "application/octet-stream",
                    content_id=item.content_id
                    if item.content_id and len(item.content_id) <= MAX_HEADER_VALUE
                    else None,
                )
            )
    return result
