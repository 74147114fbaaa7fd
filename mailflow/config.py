"""The one TOML configuration file, validated before anything starts."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mailflow.locations import CONFIG_ENV as CONFIG_ENV
from mailflow.locations import DEFAULT_STATE_DIR, config_path, service_state_dir
from mailflow.mail.addresses import is_valid_address, normalise, split_tag

_UNITS_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_UNITS_BYTES = {"": 1, "b": 1, "kb": 1024, "k": 1024, "mb": 1024**2, "m": 1024**2, "gb": 1024**3}


class KeyedProblem(ValueError):
    """A check across several keys, saying which key to fix (pydantic gives such checks no
    location of their own)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key


class ConfigError(Exception):
    """A configuration problem a person can fix: names the file, the key and what is wrong."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        super().__init__(file, key, problem)
        self.file, self.key, self.problem = file, key, problem

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.problem}"


def parse_duration(value: object) -> object:
    """Accept 90, "90s", "5m", "2h", "1d" (seconds when no unit)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration such as 90s, 5m, 2h or 1d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 90s, 5m, 2h or 1d")
        number, unit = match.groups()
        return timedelta(seconds=float(number) * _UNITS_SECONDS[unit or "s"])
    return value


def _parse_size(value: object) -> object:
    """Accept 1048576, "512KB", "25MB", "1GB"."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", value)
        if not match or match.group(2).lower() not in _UNITS_BYTES:
            raise ValueError(f"{value!r} is not a size such as 512KB or 25MB")
        return int(match.group(1)) * _UNITS_BYTES[match.group(2).lower()]
    return value


def duration_or_none(value: object) -> timedelta | None:
    """A duration written in a rule ("4h", "2d", 90), or None when it is not one, so that
    the rule loader can name the rule and key instead of passing on a ValueError."""
    try:
        parsed = parse_duration(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, timedelta) else None


def _longer_than_zero(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero, such as 30s, 5m or 1h")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative (0 turns it off)")
    return value


# A zero or negative interval made the sweep and the sender spin, or switched the cap on
# automatic mail off without a word: durations are longer than zero unless they may be 0.
Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_longer_than_zero)]
DurationOrZero = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_not_negative)
]
Size = Annotated[int, BeforeValidator(_parse_size), Field(gt=0)]


def language_code(value: str) -> str:
    """A language as Babel names it ("fr", "pl", "pt_BR"; "fr-FR" is read as "fr_FR"), or
    ValueError saying what a language looks like."""
    try:
        return str(Locale.parse(value.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"{value!r} is not a language such as en, fr or pl") from None


def zone_name(value: str) -> str:
    """A time zone of the IANA database ("Europe/Warsaw"), or ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone such as Europe/Berlin") from None
    return value


Language = Annotated[str, AfterValidator(language_code)]
# Set on customers and usergroups: mailflow's own settings, not custom fields.
PERSONAL_SETTINGS = ("language", "timezone")
Port = Annotated[int, Field(ge=0, le=65535)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceConfig(Section):
    name: str = "mailflow"
    # Domain of the Message-IDs we generate; defaults to the first ticket address's domain.
    domain: str | None = None
    # The database, the secret and the maildir, unless set one by one: systemd's
    # StateDirectory= ($STATE_DIRECTORY) under the unit, else var/ beside the file.
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    # The key that signs reply addresses; created (mode 0600) on first start.
    secret_file: Path = Path(DEFAULT_STATE_DIR, "secret")
    # What customers, approvers and supervisors read when nothing else chooses a language.
    language: Language = "en"


class DatabaseConfig(Section):
    url: str = "sqlite+aiosqlite:///var/mailflow.db"
    auto_migrate: bool = True
    echo: bool = False
    # SQLite: how long a writer waits for another process's write lock before giving up
    # (the SMTP client is then told 451, try again later).
    busy_timeout: Duration = timedelta(seconds=30)
    # The attachments of large messages are kept as files here, one per content (named by
    # its SHA-256), not in the database: back it up with the database. Several daemons on
    # different machines need it on storage they share.
    attachment_dir: Path = Path(DEFAULT_STATE_DIR, "attachments")

    @field_validator("url")
    @classmethod
    def _known_driver(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql:// (postgresql+asyncpg://)"
            )
        return url


class SmtpConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 2525
    hostname: str = "localhost"
    max_message_size: Size = 25 * 1024 * 1024
    timeout: Duration = timedelta(minutes=5)


class WebConfig(Section):
    """The approval pages, the help centre (/kb/) and /healthz."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8025
    base_url: str = "http://127.0.0.1:8025"

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        """Approval links are built on it and a decision's Origin is checked against it."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL such as https://help.example.com")
        if parts.query or parts.fragment:
            raise ValueError(f"{url!r}: the base URL takes no ?query or #fragment")
        return url.rstrip("/")


_SECRET_SOURCES = ("password", "password_file", "oauth2_token_command", "oauth2_token_file")


class Credentials(Section):
    """A login: a password (inline or in a file) or an OAuth2 token (from a command or a
    file, fetched anew at every login so that a refreshed token is picked up)."""

    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    oauth2_token_command: str | None = None
    oauth2_token_file: Path | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Credentials:
        given = [name for name in _SECRET_SOURCES if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"set only one of {', '.join(given)}")
        if given and not self.username:
            raise ValueError(f"{given[0]} needs a username")
        return self


class RelayConfig(Credentials):
    host: str
    port: Port = 25
    security: Literal["none", "starttls", "tls"] = "starttls"
    timeout: Duration = timedelta(seconds=60)
    validate_certs: bool = True


class ImapAccountConfig(Credentials):
    # A label for logs and the database's bookkeeping; keep it once chosen.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    host: str
    port: Port | None = None  # 993 with tls, else 143
    security: Literal["tls", "starttls", "none"] = "tls"
    validate_certs: bool = True
    folders: list[str] = Field(default=["INBOX"], min_length=1)
    # The ticket address this mailbox feeds; without it each message is routed by its
    # Delivered-To, X-Original-To, To and Cc headers.
    deliver_to: str | None = None
    # idle: IMAP IDLE where the server offers it, else polling; poll: always poll.
    mode: Literal["idle", "poll"] = "idle"
    poll_interval: Duration = timedelta(seconds=60)
    # After a message is committed: flag it \Seen, or move it to `move_to`.
    after: Literal["seen", "move"] = "seen"
    move_to: str | None = None
    timeout: Duration = timedelta(seconds=60)

    @model_validator(mode="after")
    def _move_needs_folder(self) -> ImapAccountConfig:
        if self.after == "move" and not self.move_to:
            raise ValueError('after = "move" needs move_to, the folder to move messages to')
        return self

    @property
    def tcp_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


class LmtpConfig(Section):
    """An LMTP listener, for an MTA (Postfix, Exim) that delivers to mailflow."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 2424
    # A Unix socket instead of host and port, e.g. inside Postfix's queue directory.
    socket: Path | None = None


class OutboxConfig(Section):
    # Used when no relay is configured: every outgoing mail becomes a file here.
    maildir: Path = Path("var/sent")
    relay: RelayConfig | None = None
    concurrency: int = Field(default=4, ge=1, le=64)
    poll_interval: Duration = timedelta(seconds=5)
    retry_initial: Duration = timedelta(minutes=1)
    retry_max: Duration = timedelta(hours=1)
    give_up_after: Duration = timedelta(days=2)
    lease: Duration = timedelta(minutes=5)
    # Each delivery the relay accepted is written here (and fsynced) before the next one
    # starts, until the database has it: a crash then sends again only what was in flight.
    journal: Path = Path(DEFAULT_STATE_DIR, "outbox-journal")


class DaemonConfig(Section):
    # SIGTERM: stop taking mail at once, then finish what is under way for at most this
    # long and exit 0. Keep it below the service manager's own limit (TimeoutStopSec).
    stop_timeout: Duration = timedelta(seconds=10)


class TicketTypeConfig(Section):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    addresses: list[str] = Field(min_length=1)
    display_name: str | None = None
    statuses: list[str] = Field(min_length=1)
    closed: list[str] = []
    default_status: str
    # When a ticket becomes this type: its old status → the status it takes here. Statuses
    # not listed take default_status.
    status_map: dict[str, str] = {}
    # The language of this type's mail, unless the customer or their usergroup has one.
    language: Language | None = None

    @field_validator("addresses")
    @classmethod
    def _addresses_valid(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not is_valid_address(address) or "+" in address.partition("@")[0]:
                raise ValueError(f"{address!r} is not a plain address such as support@example.com")
        return [normalise(a) for a in addresses]

    @model_validator(mode="after")
    def _statuses_consistent(self) -> TicketTypeConfig:
        if self.default_status not in self.statuses:
            raise ValueError(
                f"default_status {self.default_status!r} is not one of the statuses {self.statuses}"
            )
        unknown = [s for s in self.closed if s not in self.statuses]
        if unknown:
            raise ValueError(f"closed names {unknown}, which are not among the statuses")
        if len(set(self.statuses)) != len(self.statuses):
            raise ValueError("statuses repeat a name")
        wrong = sorted(set(self.status_map.values()) - set(self.statuses))
        if wrong:
            raise ValueError(f"status_map leads to {wrong}, which are not among the statuses")
        return self

    def status_for(self, old_status: str) -> str:
        """The status a ticket takes on becoming this type."""
        return self.status_map.get(old_status, self.default_status)


class HygieneConfig(Section):
    # At most this many automatic mails (auto-replies, notices) to one address per window;
    # to an agent, at most agent_automatic_mail_limit; about one ticket, at most
    # ticket_automatic_mail_limit. Kept in the database: they hold across restarts and daemons.
    automatic_mail_limit: int = Field(default=5, ge=1)
    agent_automatic_mail_limit: int = Field(default=100, ge=1)
    ticket_automatic_mail_limit: int = Field(default=50, ge=1)
    automatic_mail_window: Duration = timedelta(hours=1)
    # Attachments larger than this are not extracted (the raw message keeps them).
    max_attachment_size: Size = 20 * 1024 * 1024
    # A message with more attachments than this is kept as received and quarantined, with
    # the reason; raise it and `mailflow inbound retry` to take such a message after all.
    max_attachments: int = Field(default=1000, ge=1)


class IdentityConfig(Section):
    # authserv-ids of your own MTA. An agent's mail whose topmost Authentication-Results
    # from one of them shows dkim=pass or spf=pass aligned with the From domain acts as
    # the agent even without the signed reply address.
    trusted_authserv_ids: list[str] = []


class ApprovalsConfig(Section):
    # How long an approval link stays valid.
    expire_after: Duration = timedelta(days=7)
    # A decision must come at least this long after its page was shown: link scanners that
    # submit forms (Safe Links) do so at once.
    min_decision_delay: DurationOrZero = timedelta(seconds=2)
    # For this long after deciding, the approver may change the decision through the link.
    change_window: DurationOrZero = timedelta(minutes=10)
    # How long a view of the decision page stays good to decide with; after that, pressing a
    # button shows the page again (comment kept) to press once more.
    page_expire_after: Duration = timedelta(minutes=30)

    @model_validator(mode="after")
    def _page_outlasts_the_delay(self) -> ApprovalsConfig:
        if self.page_expire_after <= self.min_decision_delay:
            raise KeyedProblem(
                "page_expire_after", "must be longer than min_decision_delay, or no one can decide"
            )
        return self


class FieldConfig(Section):
    """A custom field of usergroups, validated when it is set."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["text", "phone", "address", "url", "choice"] = "text"
    label: str | None = None
    choices: list[str] = []

    @field_validator("name")
    @classmethod
    def _not_a_setting(cls, name: str) -> str:
        if name in PERSONAL_SETTINGS:
            raise ValueError(f"{name!r} is a setting of every usergroup; choose another name")
        return name

    @model_validator(mode="after")
    def _choices_for_choice(self) -> FieldConfig:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a field of type choice needs choices, and only it has them")
        return self


_TIME = r"^([01]\d|2[0-3]):[0-5]\d$"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHoursConfig(Section):
    """When someone is there to answer; rules can tell "now" from "after hours"."""

    timezone: str = "UTC"
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = [
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
    ]
    start: str = Field(default="09:00", pattern=_TIME)
    end: str = Field(default="17:00", pattern=_TIME)
    holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        return zone_name(zone)

    @model_validator(mode="after")
    def _start_before_end(self) -> BusinessHoursConfig:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} is not before end {self.end}")
        return self


class ViewConfig(Section):
    """A named ticket list: conditions in the rules' syntax, over the ticket's own fields."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    description: str = ""
    # The condition, in the rules' syntax: e.g. {ticket.priority: {in: [high, urgent]}}
    where: dict[str, Any] | list[Any] = Field(alias="if")


class PeopleConfig(Section):
    # A customer marks a ticket private, hiding it from their usergroup's supervisors and
    # other members, with this marker in the subject or this header set to "yes".
    private_subject_marker: str = "[private]"
    private_header: str = "X-Mailflow-Private"
    # Team administrators may always change a ticket's usergroup; operators only if allowed.
    operators_may_change_usergroup: bool = False
    # How many administrators a team may have; 0 for any number. Another is refused.
    admins_per_team: int = Field(default=1, ge=0)
    usergroup_fields: list[FieldConfig] = []


class RulesConfig(Section):
    # Directory of *.yaml rule files; the shipped rules/ when unset.
    dir: Path | None = None
    # A second directory whose rules run after those of `dir`.
    extra_dir: Path | None = None
    max_depth: int = Field(default=5, ge=1, le=50)
    # How often time-based rules (in a status for N, no reply for N, due dates) are checked.
    sweep_interval: Duration = timedelta(minutes=1)


class TemplatesConfig(Section):
    # Searched before the shipped templates/, so a file here overrides the one shipped.
    dir: Path | None = None


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


def _default_types() -> list[TicketTypeConfig]:
    return [
        TicketTypeConfig(
            name="ticket",
            addresses=["support@example.com"],
            statuses=["open", "agent waiting", "customer waiting", "resolved", "closed"],
            closed=["resolved", "closed"],
            default_status="open",
        ),
        TicketTypeConfig(
            name="suggestion",
            addresses=["suggestion@example.com"],
            statuses=["new", "under review", "accepted", "rejected", "done"],
            closed=["rejected", "done"],
            default_status="new",
        ),
    ]


class Config(Section):
    instance: InstanceConfig = InstanceConfig()
    daemon: DaemonConfig = DaemonConfig()
    database: DatabaseConfig = DatabaseConfig()
    smtp: SmtpConfig = SmtpConfig()
    lmtp: LmtpConfig = LmtpConfig()
    imap: list[ImapAccountConfig] = []
    web: WebConfig = WebConfig()
    outbox: OutboxConfig = OutboxConfig()
    hygiene: HygieneConfig = HygieneConfig()
    people: PeopleConfig = PeopleConfig()
    approvals: ApprovalsConfig = ApprovalsConfig()
    business_hours: BusinessHoursConfig = BusinessHoursConfig()
    # Custom fields of tickets, set by rules (set_field); same types as usergroup fields.
    ticket_fields: list[FieldConfig] = []
    views: list[ViewConfig] = []
    identity: IdentityConfig = IdentityConfig()
    rules: RulesConfig = RulesConfig()
    templates: TemplatesConfig = TemplatesConfig()
    log: LogConfig = LogConfig()
    types: list[TicketTypeConfig] = Field(default_factory=_default_types, min_length=1)
    # Where relative paths point: the config file's directory, or the working directory.
    base_dir: Path = Path()
    source: str = "(built-in defaults)"

    @model_validator(mode="after")
    def _types_distinct(self) -> Config:
        names = [t.name for t in self.types]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise KeyedProblem(f"types[{index}].name", f"{name!r} names another type too")
        seen: dict[str, str] = {}
        for index, ticket_type in enumerate(self.types):
            for address in ticket_type.addresses:
                if address in seen:
                    owner = seen[address]
                    where = "twice" if owner == ticket_type.name else f"also in {owner!r}"
                    raise KeyedProblem(f"types[{index}].addresses", f"{address} is listed {where}")
                seen[address] = ticket_type.name
        names = [account.name for account in self.imap]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise KeyedProblem(f"imap[{index}].name", f"{name!r} names another account too")
        for index, account in enumerate(self.imap):
            if account.deliver_to and split_tag(account.deliver_to)[0] not in seen:
                raise KeyedProblem(
                    f"imap[{index}].deliver_to",
                    f"{account.deliver_to} is not an address of any ticket type",
                )
        return self

    def path(self, value: Path) -> Path:
        """Resolve a configured path against the config file's directory."""
        return value if value.is_absolute() else self.base_dir / value

    @property
    def database_url(self) -> str:
        url = self.database.url
        prefix = "sqlite+aiosqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            relative = url.removeprefix(prefix)
            if relative and relative != ":memory:":
                return prefix + str(self.path(Path(relative)))
        return url

    @property
    def message_id_domain(self) -> str:
        return self.instance.domain or self.types[0].addresses[0].partition("@")[2]

    def ticket_type(self, name: str) -> TicketTypeConfig:
        for ticket_type in self.types:
            if ticket_type.name == name:
                return ticket_type
        raise KeyError(name)


def _key_path(location: Sequence[int | str]) -> str:
    key = ""
    for part in location:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else part)
    return key


def _describe(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return "is required"
    return message


def _with_state_defaults(
    data: dict[str, Any], base_dir: Path, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The paths left unset (secret, SQLite database, attachment files, maildir, delivery
    journal) go into the state directory:
    `[instance] state_dir` (relative to the file), else systemd's, else var/ beside the file."""
    sections = [data.get(name, {}) for name in ("instance", "database", "outbox")]
    if not all(isinstance(section, dict) for section in sections):
        return data  # validation names the section that is not a table
    instance, database, outbox = sections
    given = instance.get("state_dir")
    if given is not None and not isinstance(given, str):
        return data
    state = (
        base_dir / given if given else service_state_dir(environ) or base_dir / DEFAULT_STATE_DIR
    ).absolute()
    return {
        **data,
        "instance": {"secret_file": str(state / "secret"), **instance, "state_dir": str(state)},
        "database": {
            "url": f"sqlite+aiosqlite:///{state / 'mailflow.db'}",
            "attachment_dir": str(state / "attachments"),
            **database,
        },
        "outbox": {
            "maildir": str(state / "sent"),
            "journal": str(state / "outbox-journal"),
            **outbox,
        },
    }


def from_mapping(
    data: dict[str, Any], source: str, base_dir: Path, environ: Mapping[str, str] = os.environ
) -> Config:
    """Validate parsed TOML; the first problem becomes a ConfigError."""
    data = _with_state_defaults(data, base_dir, environ)
    try:
        return Config.model_validate({**data, "base_dir": base_dir, "source": source})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key_path(first["loc"])
        keyed = first.get("ctx", {}).get("error")
        if isinstance(keyed, KeyedProblem):
            key = f"{key}.{keyed.key}" if key else keyed.key
        raise ConfigError(source, key, _describe(dict(first))) from None


def load_config(path: Path | None = None) -> Config:
    """Load the file named by --config or MAILFLOW_CONFIG, else ./mailflow.toml, else the
    built-in defaults."""
    path = config_path(path)
    if path is None:
        return from_mapping({}, "(built-in defaults)", Path.cwd())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"is not valid TOML: {exc}") from None
    for key in ("base_dir", "source"):
        if key in data:
            raise ConfigError(str(path), key, "unknown key")
    return from_mapping(data, str(path), path.resolve().parent)
