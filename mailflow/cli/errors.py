"""The errors a person can act on, each with its exit status (sysexits.h)."""

from __future__ import annotations

import os

from mailflow.automation.schema import RuleError
from mailflow.config import ConfigError
from mailflow.db.session import DatabaseUnavailable
from mailflow.render import TemplateProblem

# (exception, exit status) in lookup order; the message is the exception's own text.
EXIT_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (ConfigError, os.EX_CONFIG),
    (RuleError, os.EX_CONFIG),
    (TemplateProblem, os.EX_CONFIG),
    (DatabaseUnavailable, os.EX_TEMPFAIL),
)


def exit_status(exc: Exception) -> int | None:
    return next((code for cls, code in EXIT_STATUSES if isinstance(exc, cls)), None)
