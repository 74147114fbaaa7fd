"""App: the configuration and the long-lived parts built from it, passed to whoever needs them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.automation.engine import Engine
from mailflow.automation.schema import load_rules
from mailflow.clock import Clock, SystemClock
from mailflow.config import Config, ConfigError
from mailflow.db.session import Database
from mailflow.outbox.mailer import Mailer
from mailflow.pipeline.addressbook import AddressBook
from mailflow.pipeline.intake import Services
from mailflow.render import Renderer
from mailflow.tickets.views import check_views
from mailflow.tokens import Signer


class App:
    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        """Loads rules and templates first: a mistake in them stops here, before any socket."""
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.signer = Signer.from_file(config.path(config.instance.secret_file))
        self._load_workflow()
        self.addresses = AddressBook(config)
        check_views(config)
        self.db = Database.from_config(config)
        self._wake_sender: Callable[[], None] = lambda: None

    def check_secret(self, *, create: bool) -> None:
        """The instance secret, read (or, with `create`, made) now rather than at the first
        mail to sign: a short secret or a path that cannot be written stops start-up."""
        path = self.config.path(self.config.instance.secret_file)
        if not create and not path.exists():
            return
        try:
            self.signer.secret  # noqa: B018  (reading it is the check)
        except (OSError, ValueError) as exc:
            raise ConfigError(self.config.source, "instance.secret_file", str(exc)) from None

    def _load_workflow(self) -> None:
        renderer = Renderer.from_config(self.config)
        rules = load_rules(self.config, renderer)
        # Replaced together, and only once both loaded: a message sees old or new, never half.
        self.renderer, self.rules = renderer, rules
        self.mailer = Mailer(self.config, renderer, self.signer)
        self.engine = Engine(rules, self.config, self.mailer)

    def reload(self) -> None:
        """Rules and templates again (SIGHUP). A mistake keeps the old ones, raising why."""
        self._load_workflow()

    def services(self, session: AsyncSession) -> Services:
        return Services(session, self.config, self.mailer, self.addresses, self.signer)

    def on_outbox_change(self, wake: Callable[[], None]) -> None:
        self._wake_sender = wake

    def wake_sender(self) -> None:
        self._wake_sender()

    async def close(self) -> None:
        await self.db.dispose()
