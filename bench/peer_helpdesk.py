"""The same messages through a peer: django-helpdesk's `get_email`, reading a local directory.

    .venv/bin/python bench/peer_helpdesk.py --messages 2000
    .venv/bin/python bench/ingest.py --peer ...          # side by side with mailflow

django-helpdesk runs from a throwaway virtualenv outside the repository (default
~/.cache/mailflow-bench/helpdesk-venv, made on first use with the versions pinned below). The
script writes a minimal Django project (SQLite in WAL mode with synchronous=FULL, as mailflow
uses it, or a schema `helpdesk_bench` of the given PostgreSQL database), one queue whose mailbox
is a local directory (`email_box_type = "local"`, `email_box_local_dir`), and Django's
file-based email backend, so the acknowledgement it sends each submitter is written to disk as
mailflow's outbox writes its maildir. It then puts the N messages in that directory as .eml
files and runs `manage.py get_email` once, as a subprocess, measuring its wall time and CPU
(its own and its children's, from wait4, plus the PostgreSQL backends of the database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

if not __package__:  # run as a script: the repository root, so that `bench` imports
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import Backends, memory_mb

# What worked (2026-11-30); the peer is measured as released, so its version is part of the result.
REQUIREMENTS = ("django-helpdesk==2.6.1", "Django==5.2.19")
POSTGRES_REQUIREMENTS = ("psycopg[binary]==3.3.9",)
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
DEFAULT_PEER_VENV = CACHE / "mailflow-bench" / "helpdesk-venv"
SCHEMA = "helpdesk_bench"
QUEUE_ADDRESS = "support@example.com"
POLL_INTERVAL = 0.05  # for its memory, and the PostgreSQL backends' CPU


class PeerFailed(RuntimeError):
    """The peer could not be installed, set up or run; its output says why."""


# ---------------------------------------------------------------------------- set-up


def ensure_venv(venv: Path, postgres: bool) -> Path:
    """The venv's python, with django-helpdesk (and psycopg for PostgreSQL) installed."""
    python = venv / "bin" / "python"
    wanted = [*REQUIREMENTS, *(POSTGRES_REQUIREMENTS if postgres else ())]
    probe = "import helpdesk, django" + (", psycopg" if postgres else "")
    if python.exists() and _quiet([str(python), "-c", probe]).returncode == 0:
        return python
    _note(f"peer: installing {' '.join(wanted)} into {venv}")
    if not python.exists():
        _checked([sys.executable, "-m", "venv", str(venv)])
    _checked([str(python), "-m", "pip", "install", "-q", *wanted])
    return python


def write_project(directory: Path, database_url: str | None) -> dict[str, str]:
    """A settings module and the directories it names; returns the environment to run in."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mailbox").mkdir(exist_ok=True)
    (directory / "sent").mkdir(exist_ok=True)
    if database_url:
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _pg_part(database_url, "name"),
            "USER": _pg_part(database_url, "user"),
            "HOST": _pg_part(database_url, "host"),
            "PORT": _pg_part(database_url, "port"),
            "OPTIONS": {"options": f"-c search_path={SCHEMA}"},
        }
    else:
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(directory / "helpdesk.db"),
            # As mailflow runs SQLite: WAL, and a commit that survives a power cut.
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"},
        }
    settings = f"""\
        SECRET_KEY = "benchmark-only"
        DEBUG = False
        USE_TZ = True
        ALLOWED_HOSTS = ["localhost"]
        SITE_ID = 1
        INSTALLED_APPS = [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.sites",
            "django.contrib.humanize",
            "helpdesk",
        ]
        MIDDLEWARE = []
        ROOT_URLCONF = "bench_urls"
        TEMPLATES = [{{
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {{"context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]}},
        }}]
        DATABASES = {{"default": {database!r}}}
        DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
        EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
        EMAIL_FILE_PATH = {str(directory / "sent")!r}
        DEFAULT_FROM_EMAIL = {QUEUE_ADDRESS!r}
        HELPDESK_TEAMS_MODE_ENABLED = False
        LOGGING = {{"version": 1, "disable_existing_loggers": True}}
        """
    (directory / "bench_settings.py").write_text(textwrap.dedent(settings), encoding="utf-8")
    # The links in its mails are reversed in the "helpdesk" namespace.
    (directory / "bench_urls.py").write_text(
        "from django.urls import include, path\n"
        'urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]\n',
        encoding="utf-8",
    )
    return {**os.environ, "PYTHONPATH": str(directory), "DJANGO_SETTINGS_MODULE": "bench_settings"}


def _pg_part(url: str, part: str) -> str:
    rest = url.partition("://")[2]
    credentials, _, location = rest.rpartition("@")
    hostport, _, name = location.partition("/")
    host, _, port = hostport.partition(":")
    return {"user": credentials.partition(":")[0], "host": host, "port": port or "5432",
            "name": name.partition("?")[0]}[part]  # fmt: skip


def create_queue(python: Path, env: dict[str, str], mailbox: Path) -> None:
    """The schema, then one queue that takes mail from the local directory."""
    _checked([str(python), "-m", "django", "migrate", "-v", "0"], env=env)
    code = (
        "from helpdesk.models import Queue; "
        "Queue.objects.create(title='Support', slug='support', "
        f"email_address={QUEUE_ADDRESS!r}, allow_email_submission=True, "
        f"email_box_type='local', email_box_local_dir={str(mailbox)!r}, "
        "email_box_interval=0, logging_type='none')"
    )
    _checked([str(python), "-m", "django", "shell", "-c", code], env=env)


async def _reset_schema(database_url: str) -> None:
    connection = await asyncpg.connect("postgresql://" + database_url.partition("://")[2])
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    finally:
        await connection.close()


# ---------------------------------------------------------------------------- the run


async def _get_email(
    python: Path, env: dict[str, str], database_url: str | None
) -> tuple[float, float, float, float]:
    """Run get_email once: wall seconds, its CPU seconds (with children), the database's
    backends' CPU seconds, and its peak RSS in MB (polled: the last 50 ms may be missed)."""
    backends = Backends()
    watch = None
    if database_url:
        watch = await asyncpg.connect("postgresql://" + database_url.partition("://")[2])
        await backends.sample(watch)
    started = time.perf_counter()
    # Popen and wait4(WNOHANG) do not block; wait4 gives the CPU of the process and its children.
    process = subprocess.Popen(  # noqa: ASYNC220
        [str(python), "-m", "django", "get_email", "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # Its peak RSS from VmHWM, which starts afresh at exec (wait4's ru_maxrss would count the
    # pages of this process that the child shared between fork and exec).
    peak = 0.0
    try:
        while True:
            peak = max(peak, memory_mb(process.pid)[1])
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # noqa: ASYNC222
            if pid:
                break
            if watch is not None:
                await backends.sample(watch)
            await asyncio.sleep(POLL_INTERVAL)
        wall = time.perf_counter() - started
        if watch is not None:
            await backends.sample(watch)
    finally:
        if watch is not None:
            await watch.close()
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise PeerFailed(f"get_email exited {process.returncode}\n{output[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, backends.cpu(), peak


def count_tickets(directory: Path, database_url: str | None) -> int:
    query = "SELECT count(*) FROM helpdesk_ticket"
    if database_url:
        return int(asyncio.run(_pg_count(database_url, query)))
    with sqlite3.connect(directory / "helpdesk.db") as connection:
        return int(connection.execute(query).fetchone()[0])


async def _pg_count(database_url: str, query: str) -> int:
    connection = await asyncpg.connect("postgresql://" + database_url.partition("://")[2])
    try:
        await connection.execute(f"SET search_path = {SCHEMA}")
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


def count_sent(directory: Path) -> int:
    """Mails the file backend wrote: each file holds one or more, each with a Message-ID."""
    return sum(
        path.read_bytes().count(b"\nMessage-ID: ") for path in (directory / "sent").iterdir()
    )


def run(
    mails: Sequence[bytes], venv: Path, directory: Path, database_url: str | None = None
) -> dict[str, Any]:
    """Set up the peer, feed it the messages, and measure it; a dict for ingest's report."""
    python = ensure_venv(venv, bool(database_url))
    if database_url:
        asyncio.run(_reset_schema(database_url))
    env = write_project(directory, database_url)
    mailbox = directory / "mailbox"
    create_queue(python, env, mailbox)
    # Start-up alone (Python, Django, the app registry) on an empty mailbox: reported apart.
    startup = asyncio.run(_get_email(python, env, database_url))
    for index, data in enumerate(mails):
        (mailbox / f"{index:06d}.eml").write_bytes(data)
    wall, cpu, database_cpu, peak = asyncio.run(_get_email(python, env, database_url))
    tickets = count_tickets(directory, database_url)
    per = max(tickets, 1)
    return {
        "server": "django-helpdesk",
        "version": REQUIREMENTS[0].partition("==")[2],
        "database": "postgresql" if database_url else "sqlite",
        "messages": len(mails),
        "tickets": tickets,
        "left_in_mailbox": len(list(mailbox.iterdir())),
        "mails_sent": count_sent(directory),
        "seconds": round(wall, 3),
        "tickets_per_s": round(tickets / wall, 1),
        "cpu_ms": round((cpu + database_cpu) / per * 1000, 2),
        "process_cpu_ms": round(cpu / per * 1000, 2),
        "database_cpu_ms": round(database_cpu / per * 1000, 2),
        "startup_cpu_s": round(startup[1] + startup[2], 2),
        "peak_rss_mb": round(peak, 1),
    }


# ---------------------------------------------------------------------------- helpers


def _quiet(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, check=False, **kwargs)


def _checked(argv: list[str], **kwargs: Any) -> None:
    done = _quiet(argv, **kwargs)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise PeerFailed(f"{' '.join(argv[:4])} exited {done.returncode}\n{output[-3000:]}")


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    from ingest import compose  # the benchmark's own messages, so both see the same mail

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", "-n", type=int, default=2000)
    parser.add_argument("--database-url", help="PostgreSQL (schema helpdesk_bench is DROPPED)")
    parser.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV)
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args(argv)
    mails = [compose(i, "peer").data for i in range(args.messages)]
    directory = Path(tempfile.mkdtemp(prefix="mailflow-bench-peer-"))
    try:
        result = run(mails, args.peer_venv, directory, args.database_url)
    except PeerFailed as exc:
        _note(f"peer: {exc}")
        return 2
    finally:
        if args.keep:
            _note(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0 if result["tickets"] == args.messages else 1


if __name__ == "__main__":
    sys.exit(main())
