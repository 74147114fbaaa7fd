"""Our addresses: which ticket type owns each, with or without a +tag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailflow.config import Config, TicketTypeConfig
from mailflow.mail.addresses import split_tag


@dataclass(frozen=True, slots=True)
class Route:
    ticket_type: TicketTypeConfig
    address: str
    tag: str | None


class AddressBook:
    def __init__(self, config: Config) -> None:
        self._types = {
            address: ticket_type
            for ticket_type in config.types
            for address in ticket_type.addresses
        }

    def resolve(self, address: str) -> Route | None:
        """support@… and support+anything@… belong to the type that owns support@…."""
        base, tag = split_tag(address)
        ticket_type = self._types.get(base)
        return Route(ticket_type, base, tag) if ticket_type else None

    def first(self, addresses: Iterable[str]) -> Route | None:
        """The first of the addresses that is ours decides the ticket type."""
        for address in addresses:
            route = self.resolve(address)
            if route:
                return route
        return None
