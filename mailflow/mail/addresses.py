"""Email addresses: normalising, validating and plus-address tags."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr

# Deliberately simple: a local part without spaces or angle brackets, one @, a dotted domain.
_ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A display name and an address, as found in From, To or Cc."""

    name: str
    address: str

    def formatted(self) -> str:
        return str(Address(display_name=self.name, addr_spec=self.address))


def normalise(address: str) -> str:
    """Lower-case and strip an address; the form used for lookups and storage."""
    return address.strip().strip("<>").strip().lower()


def is_valid_address(address: str) -> bool:
    return bool(_ADDRESS.match(address.strip()))


def split_tag(address: str) -> tuple[str, str | None]:
    """support+123@example.com → ("support@example.com", "123")."""
    local, _, domain = normalise(address).partition("@")
    base, plus, tag = local.partition("+")
    return f"{base}@{domain}", (tag if plus else None)


def with_tag(address: str, tag: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+{tag}@{domain}"


def parse_mailbox(value: str | None) -> Mailbox | None:
    """The first valid mailbox of a header value, or None."""
    if not value:
        return None
    name, address = parseaddr(value)
    if not address or not is_valid_address(address):
        return None
    return Mailbox(name=name.strip(), address=normalise(address))


def parse_mailboxes(values: list[str]) -> list[Mailbox]:
    return [
        Mailbox(name=name.strip(), address=normalise(address))
        for name, address in getaddresses(values)
        if address and is_valid_address(address)
    ]
