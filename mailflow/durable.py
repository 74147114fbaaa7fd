"""Files that survive a crash or a power cut: a rename or a new file is only there for good
once its directory is synced too."""

from __future__ import annotations

import os
from pathlib import Path


def sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
