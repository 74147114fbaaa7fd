"""How outgoing mail leaves: an SMTP relay, or a local maildir when none is configured."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from mailflow.config import Config, RelayConfig
from mailflow.credentials import CredentialError, check_secret_files, login_for
from mailflow.outbox.queue import Claimed, needs_smtputf8


class TemporaryFailure(Exception):
    """Try again later (4xx, connection trouble)."""


class PermanentFailure(Exception):
    """Do not try again (5xx)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One recipient the relay would not take while it took the others."""

    address: str
    code: int
    message: str

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    def __str__(self) -> str:
        return f"{self.address}: {self.code} {self.message}"


@dataclass(frozen=True, slots=True)
class Sent:
    note: str
    refused: tuple[Refusal, ...] = ()


class Transport(Protocol):
    async def send(self, mail: Claimed) -> Sent:
        """Deliver one message to the recipients the transport takes (saying which it
        refused), or raise one of the failures."""
        ...


class MaildirTransport:
    """Writes each message once into `new/` (tmp → rename, as the maildir format asks)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _deliver(self, mail: Claimed) -> str:
        for sub in ("tmp", "new", "cur"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        # Named after the Message-ID, so a retry after a crash cannot write it twice; a
        # reader may since have moved it to cur/, which is not searched (it may be large).
        digest = hashlib.sha256(mail.message_id.encode()).hexdigest()[:32]
        name = f"mailflow-{digest}.{socket.gethostname().replace('/', '_')}"
        final = self.directory / "new" / name
        if final.exists():
            return f"already in {final.parent}"
        temporary = self.directory / "tmp" / name
        with temporary.open("wb") as handle:
            handle.write(mail.raw)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(final)
        return f"written to {final}"

    async def send(self, mail: Claimed) -> Sent:
        try:
            return Sent(await asyncio.to_thread(self._deliver, mail))
        except OSError as exc:
            raise TemporaryFailure(f"maildir {self.directory}: {exc}") from exc


class SmtpRelay:
    def __init__(self, relay: RelayConfig, base: Path) -> None:
        self.relay = relay
        self.base = base

    async def send(self, mail: Claimed) -> Sent:
        relay = self.relay
        try:
            login = await login_for(relay, self.base)
        except CredentialError as exc:
            raise TemporaryFailure(f"relay login: {exc}") from exc

        async def token() -> str:
            assert login is not None
            return login.secret

        try:
            errors, response = await aiosmtplib.send(
                mail.raw,
                sender=mail.mail_from,
                recipients=list(mail.rcpt_tos),
                mail_options=["SMTPUTF8"] if needs_smtputf8(mail.mail_from, mail.rcpt_tos) else [],
                hostname=relay.host,
                port=relay.port,
                use_tls=relay.security == "tls",
                start_tls=relay.security == "starttls",
                username=login.username if login else None,
                password=login.secret if login and not login.oauth2 else None,
                oauth_token_generator=token if login and login.oauth2 else None,
                timeout=relay.timeout.total_seconds(),
                validate_certs=relay.validate_certs,
            )
        except ValueError as exc:
            # The client library refusing the mail before a byte is sent (a control character
            # in an address, say): no retry can change that, so it is final, like a 5xx.
            raise PermanentFailure(f"the SMTP client refused to send it: {exc}") from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Our credentials, not this mail: keep it and retry until someone fixes them.
            raise TemporaryFailure(f"relay refused our login: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPNotSupported as exc:
            if "SMTPUTF8" in str(exc).upper():  # no relay will be able to write it otherwise
                raise PermanentFailure(
                    f"the relay {relay.host} cannot take international addresses (SMTPUTF8)"
                ) from exc
            raise TemporaryFailure(f"{relay.host}:{relay.port}: {exc}") from exc
        except (aiosmtplib.SMTPConnectResponseError, aiosmtplib.SMTPHeloError) as exc:
            # The relay refuses us, not this mail (554 at the greeting): keep every mail
            # and retry, rather than fail the whole queue for a relay's setting.
            raise TemporaryFailure(
                f"relay {relay.host} refused us: {exc.code} {exc.message}"
            ) from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            if exc.code == 552:  # this message's declared size
                raise PermanentFailure(f"{exc.code} {exc.message}") from exc
            raise TemporaryFailure(
                f"relay {relay.host} refused our sender address: {exc.code} {exc.message}"
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _by_code(min(r.code for r in exc.recipients), str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, f"{exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            raise TemporaryFailure(f"{relay.host}:{relay.port}: {exc}") from exc
        refused = tuple(Refusal(rcpt, r.code, r.message) for rcpt, r in errors.items())
        return Sent(str(response), refused)


def _by_code(code: int, text: str) -> Exception:
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)


def transport_for(config: Config) -> Transport:
    relay = config.outbox.relay
    if relay is None:
        return MaildirTransport(config.path(config.outbox.maildir))
    check_secret_files(config, relay, "outbox.relay")
    return SmtpRelay(relay, config.base_dir)
