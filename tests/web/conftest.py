"""Fixtures for the web pages: an HTTP client in the test's own event loop, and the steps
of an approval."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from mailflow.clock import ManualClock
from tests.conftest import RelaySink, StartDaemon
from tests.web.approving import Approving


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def approving(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> Approving:
    return Approving(start_daemon, relay_sink, clock, http)
