"""Where mailflow finds its configuration file and keeps its state. Kept free of heavy
imports: `mailflow --help` reads it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CONFIG_ENV = "MAILFLOW_CONFIG"
# Found in the working directory when neither --config nor MAILFLOW_CONFIG names a file.
CONFIG_FILE = "mailflow.toml"
# Set by systemd for a unit with StateDirectory= (a colon-separated list; ours names one).
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"
# Without a configured state_dir or systemd's, the state lives in var/ beside the file.
DEFAULT_STATE_DIR = "var"


def config_path(given: Path | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The file named by --config, else by MAILFLOW_CONFIG, else ./mailflow.toml if there
    is one; None means the built-in defaults."""
    if given is not None:
        return given
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    here = Path(CONFIG_FILE)
    return here.absolute() if here.is_file() else None


def service_state_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The state directory systemd made for the unit we run under, if any."""
    value = environ.get(STATE_DIRECTORY_ENV, "").split(":")[0]
    return Path(value) if value else None
