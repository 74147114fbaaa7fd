"""Authentication-Results (RFC 8601) from our own MTA: did the sender's domain authenticate?"""

from __future__ import annotations

import re
from collections.abc import Sequence

_RESULT = re.compile(r"\b(dkim|spf)\s*=\s*(\w+)([^;]*)", re.I)
_PROPERTY = re.compile(r"\b(header\.d|header\.i|smtp\.mailfrom|smtp\.from)\s*=\s*([^\s;]+)", re.I)


def _domain(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()


def _aligned(identity: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 §3.1): the same organisational domain, approximated here
    as equal or one a subdomain of the other."""
    found = _domain(identity)
    return "." in found and (
        found == from_domain
        or from_domain.endswith("." + found)
        or found.endswith("." + from_domain)
    )


def aligned_pass(
    headers: Sequence[str], trusted_ids: Sequence[str], from_address: str
) -> str | None:
    """Why the From address is authenticated, or None. Only the topmost header from a
    trusted authserv-id counts: our MTA adds it last, so it sits above anything forged."""
    trusted = {t.lower() for t in trusted_ids}
    if not trusted:
        return None
    from_domain = _domain(from_address)
    for header in headers:
        authserv_id = header.split(";", 1)[0].strip().split()[0].lower() if header.strip() else ""
        if authserv_id not in trusted:
            continue
        for method, result, rest in _RESULT.findall(header):
            if result.lower() != "pass":
                continue
            for _name, identity in _PROPERTY.findall(rest):
                if _aligned(identity, from_domain):
                    return f"{method.lower()}=pass for {_domain(identity)} ({authserv_id})"
        return None
    return None
