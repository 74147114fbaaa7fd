"""APScheduler in the daemon's loop; each job is a thin call into a domain function."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler


class Scheduler:
    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)

    def every(self, interval: timedelta, job: Callable[[], object], name: str) -> None:
        self._scheduler.add_job(
            job,
            "interval",
            seconds=interval.total_seconds(),
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )

    def start(self) -> None:
        if self._scheduler.get_jobs():
            self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
