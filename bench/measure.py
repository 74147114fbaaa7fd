"""CPU and memory of a server under test, everything counted, from Linux's /proc."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Every backend of the connection's database but the asking connection's own.
BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid()"
)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User plus system CPU of a process, all its threads (Linux /proc), and with `children`
    that of its children it has reaped; NaN elsewhere."""
    fields = _stat(pid)
    if fields is None:
        return float("nan")
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def group_members(pgid: int) -> list[int]:
    """Every live process of the server started as the leader of group `pgid`: the group's
    members, and its descendants that left the group (a worker that called setsid)."""
    parents: dict[int, int] = {}
    members = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
                if int(fields[2]) == pgid:
                    members.add(int(entry.name))
    for pid in parents:
        ancestor, hops = parents.get(pid, 0), 0
        while ancestor > 1 and hops < 64:
            if ancestor == pgid:
                members.add(pid)
                break
            ancestor, hops = parents.get(ancestor, 0), hops + 1
    return sorted(members)


def group_cpu(pgid: int) -> float:
    """CPU of a whole process group. Each member's reaped children are in its own counters, so
    a worker that exits mid-run still counts, once, in its parent's."""
    return sum(cpu_seconds(pid, children=True) for pid in group_members(pgid))


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and its peak (VmRSS, VmHWM), in MB."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


@dataclass(frozen=True, slots=True)
class Memory:
    processes: int
    rss_mb: float
    peak_rss_mb: float

    @classmethod
    def read(cls, pgid: int) -> Memory:
        readings = [memory_mb(pid) for pid in group_members(pgid)]
        return cls(
            len(readings),
            round(sum(rss for rss, _ in readings), 1),
            round(max((peak for _, peak in readings), default=0.0), 1),
        )


class Backends:
    """The CPU of PostgreSQL's backends serving one database, over a window. Sample it often:
    a backend that appears after the first sample counts from zero, and one that ends between
    two samples loses at most one interval (its parent, the postmaster, is not ours to read)."""

    def __init__(self) -> None:
        # pid -> (CPU seconds when first seen, latest reading).
        self._seen: dict[int, tuple[float, float]] = {}
        self._open = False

    async def sample(self, connection: Any) -> None:
        """Read every backend of `connection`'s database now (an asyncpg connection)."""
        for (pid,) in await connection.fetch(BACKENDS):
            now = cpu_seconds(pid)
            if now != now:  # NaN: it ended between the query and the read
                continue
            # Known: since it was first seen; new since the window opened: its whole life.
            first = self._seen[pid][0] if pid in self._seen else 0.0 if self._open else now
            self._seen[pid] = (first, now)
        self._open = True

    def cpu(self) -> float:
        return sum(last - first for first, last in self._seen.values())
