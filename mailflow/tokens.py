"""Signed reply addresses: who we wrote to about which ticket, verifiable when they answer.

Every mail we send carries a Reply-To such as support+123-a7-kq3vx9m2tw4e@example.com:
ticket 123, agent 7, and an HMAC of both under the instance secret. An answer to that
address proves the sender received our mail; for an agent it is also how they act as one.
One mechanism serves customers, agents and, later, supervisors and approvers."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SIGNATURE_LENGTH = 12  # base32 characters: 60 bits
_TAG = re.compile(rf"^(\d{{1,12}})-([a-z])(\d{{1,12}})-([a-z2-7]{{{SIGNATURE_LENGTH}}})$")


class Role(enum.StrEnum):
    CUSTOMER = "c"
    AGENT = "a"
    SUPERVISOR = "s"  # a customer supervising the ticket's usergroup
    APPROVER = "p"  # whoever decides an approval; the person is the approval's number


@dataclass(frozen=True, slots=True)
class ReplyToken:
    ticket_id: int
    role: Role
    person_id: int


class Signer:
    """Signs with the instance secret, read (or created) on first use, not at start-up."""

    def __init__(self, secret: Callable[[], bytes]) -> None:
        self._load = secret
        self._secret: bytes | None = None

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        return cls(lambda: load_or_create_secret(path))

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            secret = self._load()
            if len(secret) < 16:
                raise ValueError("the instance secret must be at least 16 bytes")
            self._secret = secret
        return self._secret

    def signature(self, purpose: str, *parts: object) -> str:
        """A short, case-insensitive MAC, fit for the local part of an address or a URL."""
        message = ":".join([purpose, *(str(p) for p in parts)]).encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii").lower()[:SIGNATURE_LENGTH]

    def reply_tag(self, token: ReplyToken) -> str:
        mac = self.signature("reply", token.ticket_id, token.role.value, token.person_id)
        return f"{token.ticket_id}-{token.role.value}{token.person_id}-{mac}"

    def verify_reply_tag(self, tag: str | None) -> ReplyToken | None:
        """The token a +tag carries, or None if it is not one of ours or was tampered with."""
        match = _TAG.match((tag or "").lower())
        if match is None:
            return None
        ticket, role, person, mac = match.groups()
        try:
            token = ReplyToken(int(ticket), Role(role), int(person))
        except ValueError:
            return None
        expected = self.signature("reply", token.ticket_id, token.role.value, token.person_id)
        return token if hmac.compare_digest(expected, mac) else None


def load_or_create_secret(path: Path) -> bytes:
    """The instance secret: created once (0600) on first use, then read on every start."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)  # atomic: a daemon starting alongside keeps the first secret
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text(encoding="utf-8").strip().encode()
