"""Parse time per message: mail.parse.parse() over the test corpus and a plain message.

    .venv/bin/python bench/parse_time.py              # this checkout
    PYTHONPATH=OTHER_CHECKOUT python bench/parse_time.py   # another version, same corpus

Each message is parsed `--rounds` times after one warm-up parse; the figure is the fastest
of those parses, in microseconds of this process's CPU time (the least disturbed by other
work on a shared machine; compare figures from runs made one after the other). "ordinary"
is a 3 KB plain-text message like the ingest benchmark's, the shape most mail has; "corpus"
is every .eml under tests/corpus.
"""

from __future__ import annotations

import argparse
import statistics
import time
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from mailflow.mail.parse import parse

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"


def ordinary() -> bytes:
    message = EmailMessage()
    message["From"] = "Bob Customer <bob@customer.test>"
    message["To"] = "support@example.com"
    message["Subject"] = "Printer is on fire"
    message["Message-ID"] = "<bench-1@customer.test>"
    message["Date"] = formatdate()
    message.set_content("The printer on floor 2 is on fire again. " * 75)
    return message.as_bytes()


def per_message(raw: bytes, rounds: int) -> float:
    parse(raw)
    times = []
    for _ in range(rounds):
        start = time.process_time_ns()
        parse(raw)
        times.append(time.process_time_ns() - start)
    return min(times) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    print(f"ordinary 3 KB message: {per_message(ordinary(), args.rounds * 4):8.0f} µs")
    groups: dict[str, list[float]] = {}
    for path in sorted(CORPUS.rglob("*.eml")):
        group = path.parent.name if path.parent != CORPUS else "(top)"
        groups.setdefault(group, []).append(per_message(path.read_bytes(), args.rounds))
    every = [t for times in groups.values() for t in times]
    for group, times in sorted(groups.items()):
        print(f"{group:16} {len(times):3} files: median {statistics.median(times):8.0f} µs")
    print(
        f"{'corpus':16} {len(every):3} files: median {statistics.median(every):8.0f} µs, "
        f"mean {statistics.mean(every):8.0f} µs"
    )


if __name__ == "__main__":
    main()
