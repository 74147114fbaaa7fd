"""Where the shipped templates, rules and example configuration live."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    # In a wheel they are copied into the package; in a source checkout they sit beside it.
    inside = _PACKAGE / "_shipped" / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


def templates_dir() -> Path:
    return _shipped("templates")


def rules_dir() -> Path:
    return _shipped("rules")


def example_config() -> Path:
    return _PACKAGE / "example.toml"
