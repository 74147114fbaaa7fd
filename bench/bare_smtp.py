"""A bare aiosmtpd server that accepts and discards mail: the floor mailflow is measured against.

Run by bench/ingest.py as `python bench/bare_smtp.py PORT`; SIGTERM stops it. It is set up
as mailflow's listener is (aiosmtpd's SMTP in the process's own loop, same size limit, SMTPUTF8,
a fixed hostname), so the difference between the two is mailflow's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"
# mailflow's defaults, so both servers read DATA under the same limits.
MAX_MESSAGE_SIZE = 25 * 1024 * 1024
TIMEOUT_SECONDS = 300.0


class Discard:
    """Answers 250 to every message and keeps nothing."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


def _protocol(handler: Discard) -> SMTP:
    # hostname= spares aiosmtpd a socket.getfqdn() call on every connection.
    return SMTP(
        handler,
        hostname="bench.localhost",
        data_size_limit=MAX_MESSAGE_SIZE,
        enable_SMTPUTF8=True,
        timeout=TIMEOUT_SECONDS,
        loop=asyncio.get_running_loop(),
    )


async def serve(port: int) -> None:
    """Listen until SIGTERM or SIGINT, in this loop rather than aiosmtpd's threaded Controller."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    handler = Discard()
    server = await loop.create_server(lambda: _protocol(handler), HOST, port)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
