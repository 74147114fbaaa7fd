"""Attachment content kept as files, one per SHA-256, for the attachments of large messages.

A large attachment is decoded from the raw message straight into its file, a megabyte at a
time, so that it is never held in memory whole, let alone several times over; its `blobs`
row then has no data and names the file by its digest (DIR/ab/abcdef…)."""

from __future__ import annotations

import binascii
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mailflow.config import Config
from mailflow.durable import sync_directory
from mailflow.mail.large import parse_large
from mailflow.mail.parse import ParsedAttachment, ParsedMessage

CHUNK = 1 << 20
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(b for b in range(256) if b not in _ALPHABET)


class AttachmentFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def from_config(cls, config: Config) -> AttachmentFiles:
        return cls(config.path(config.database.attachment_dir))

    def path(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def parse(self, raw: bytes, size_limit: int) -> ParsedMessage:
        """The message parsed, its large attachments decoded into their files (those over
        `size_limit` are left in the raw message only). Blocking: run it in a thread."""
        parsed = parse_large(raw)
        if not any(a.body for a in parsed.attachments):
            return parsed
        attachments = tuple(self._kept(raw, a, size_limit) for a in parsed.attachments)
        return replace(parsed, attachments=attachments)

    def _kept(self, raw: bytes, attachment: ParsedAttachment, limit: int) -> ParsedAttachment:
        if attachment.body is None:
            return attachment
        stored = self.decode_into_file(raw, attachment.body, limit)
        return replace(attachment, body=None, stored=stored) if stored else attachment

    def decode_into_file(
        self, raw: bytes, body: tuple[int, int], limit: int
    ) -> tuple[str, int] | None:
        """raw[start:end] is base64 text: decode it into its file and return its digest and
        size, or None when it decodes to more than `limit` bytes."""
        temporary = self.directory / "tmp"
        temporary.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=temporary)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = _decode(raw, body, out.write, limit)
                out.flush()
                os.fsync(out.fileno())
            if size > limit:
                return None
            final = self.path(digest)
            final.parent.mkdir(exist_ok=True)
            os.replace(name, final)  # the same content, if it was there already
            sync_directory(final.parent)
            return digest, size
        finally:
            Path(name).unlink(missing_ok=True)


def _decode(
    raw: bytes, body: tuple[int, int], write: Callable[[bytes], object], limit: int
) -> tuple[str, int]:
    """Decode base64 text a chunk at a time; stops once past `limit` bytes."""
    start, end = body
    digest, size, carry = hashlib.sha256(), 0, b""
    for offset in range(start, end, CHUNK):
        text = carry + raw[offset : min(offset + CHUNK, end)].translate(None, _NOT_BASE64)
        usable = len(text) - len(text) % 4
        data, carry = binascii.a2b_base64(text[:usable]), text[usable:]
        digest.update(data)
        write(data)
        size += len(data)
        if size > limit:
            break
    if carry and size <= limit:  # the last group, its padding missing or cut short
        try:
            data = binascii.a2b_base64(carry + b"=" * (-len(carry) % 4))
        except binascii.Error:
            data = b""
        digest.update(data)
        write(data)
        size += len(data)
    return digest.hexdigest(), size
