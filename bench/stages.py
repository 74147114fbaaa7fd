"""Where the daemon's time goes, by stage, from py-spy's raw stacks (ingest.py --profile FILE).

    .venv/bin/python bench/stages.py daemon.txt [more.txt ...]

Counts the busy samples of every process's main thread (the event loop) and puts each under one
stage: the stage of the innermost frame that names one, looking only at the part of the stack
under the callback the loop is running (Handle._run). A sample with no such callback is the
loop itself (scheduling). Samples waiting for events or work are left out; other threads are
listed apart.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# (stage, substrings of a frame "function (file:line)"), matched from the innermost frame out.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Rendering the Jinja2 templates (render.py)", ("jinja2/", "mailflow/render.py")),
    ("aiosqlite's hand-off to its worker thread", ("aiosqlite/",)),
    ("SQLAlchemy: flushes, statements, rows (with asyncpg)", ("sqlalchemy/", "asyncpg/")),
    ("Composing outgoing mail with the email package (mail/compose.py)", ("mail/compose.py",)),
    ("Splitting quotes and signatures (mail/quotes.py, mailparser_reply)",
     ("mail/quotes.py", "mailparser_reply/")),
    ("Parsing the incoming message (mail/parse.py)", ("mail/parse.py",)),
    ("Serialising the outgoing message (outbox/queue.py)", ("outbox/queue.py",)),
    ("Outbox sender (claim, maildir write, mark sent)", ("outbox/sender.py",)),
    ("aiosmtpd protocol (commands, reading DATA)", ("aiosmtpd/",)),
    ("Other mailflow code", ("mailflow/",)),
)  # fmt: skip
LOOP = "The event loop itself (selector, scheduling)"
OTHER = "Other libraries under a callback"
# The event loop's frames: under the last of them is the callback it runs.
LOOP_FRAMES = ("Handle._run ", "BaseEventLoop._run_once ")
# Innermost frames of a thread waiting for work or events: not busy. (py-spy's own idle
# detection does not work in every container, so these are left out here.)
IDLE = (
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "_worker (concurrent/futures/thread.py:81)",
    "EpollSelector.select (selectors.py",
    "wait (threading.py",
    "get (queue.py",
)


def stage(frames: list[str]) -> str:
    """The stage of one main-thread stack, outermost frame first. SQLAlchemy's async layer
    runs statements in a greenlet, whose stack has no loop frames: all of it is the callback."""
    loop = [i for i, f in enumerate(frames) if f.startswith(LOOP_FRAMES)]
    for frame in reversed(frames[loop[-1] + 1 :] if loop else frames):
        for name, patterns in STAGES:
            if any(p in frame for p in patterns):
                return name
    return OTHER if loop and frames[loop[-1]].startswith("Handle._run ") else LOOP


def read(lines: Iterable[str]) -> tuple[Counter[str], Counter[str]]:
    """Main-thread samples by stage, and other threads' busy samples by thread name."""
    main: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread (")), "")
        frames = [f for f in frames if not f.startswith(("process ", "thread ("))]
        if not frames or frames[-1].startswith(IDLE):
            continue
        if thread.endswith("MainThread"):
            main[stage(frames)] += int(count)
        else:
            others[thread.partition(": ")[2].split(" (")[0] or thread] += int(count)
    return main, others


def table(main: Counter[str], others: Counter[str]) -> str:
    total = sum(main.values()) or 1
    lines = ["| stage | samples | share |", "| --- | --- | --- |"]
    for name, count in main.most_common():
        lines.append(f"| {name} | {count} | {count / total:.0%} |")
    lines.append(f"| main threads, busy | {sum(main.values())} | 100% |")
    for name, count in others.most_common():
        lines.append(f"| thread {name}, busy (not in the share) | {count} | - |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args(argv)
    main_samples: Counter[str] = Counter()
    other_samples: Counter[str] = Counter()
    for path in args.files:
        found, others = read(path.read_text(errors="replace").splitlines())
        main_samples += found
        other_samples += others
    print(table(main_samples, other_samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
