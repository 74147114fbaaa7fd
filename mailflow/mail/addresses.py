"""Email addresses: normalising, validating and plus-address tags."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses

# Deliberately simple: a local part without spaces, control characters or angle brackets,
# one @, and a domain of letter-digit-hyphen labels joined by single dots.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_CONTROL = "\x00-\x1f\x7f-\x9f"
_ADDRESS = re.compile(rf"^[^\s@<>()\[\],;:\"{_CONTROL}]+@{_LABEL}(?:\.{_LABEL})*$")
_HAS_CONTROL = re.compile(f"[{_CONTROL}]")


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
    address = address.strip()
    # RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an address at most 254; a longer
    # one no MTA delivers and no address column holds.
    return len(address.encode()) <= 254 and bool(_ADDRESS.match(address))


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
    # Not parseaddr(): since Python 3.11.10 and 3.12.6 it finds nothing in "a@x, b@y".
    found = parse_mailboxes([value]) if value else []
    return found[0] if found else None


def with_control_characters(values: list[str]) -> list[str]:
    """Addresses in these header values that hold a control character: no SMTP client will
    write them (RFC 5321 §4.1.2 allows none), so they are refused, shown escaped."""
    return [
        address.encode("unicode-escape").decode("ascii")
        for _, address in getaddresses(values)
        if _HAS_CONTROL.search(address)
    ]


def parse_mailboxes(values: list[str]) -> list[Mailbox]:
    return [
        Mailbox(name=name.strip(), address=normalise(address))
        for name, address in getaddresses(values)
        if address and is_valid_address(address)
    ]
