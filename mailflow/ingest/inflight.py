"""Messages being committed: shielded from cancellation and waited for at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class InFlight:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def drain(self, until: float) -> None:
        """Wait for the work under way, until `until` (loop time) at the latest."""
        loop = asyncio.get_running_loop()
        while self._tasks and loop.time() < until:
            await asyncio.wait(list(self._tasks), timeout=until - loop.time())

    def cancel(self) -> None:
        """Give up what is still under way: a message not committed was not answered 250,
        so its sender tries again."""
        for task in list(self._tasks):
            task.cancel()
