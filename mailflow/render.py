"""Every email we send is rendered here, from Jinja2 templates, as text plus optional HTML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)

from mailflow.config import Config
from mailflow.resources import templates_dir


class TemplateProblem(Exception):
    """A template that is missing or fails to render, named so that a person can fix it."""

    def __init__(self, template: str, problem: str) -> None:
        super().__init__(template, problem)
        self.template, self.problem = template, problem

    def __str__(self) -> str:
        return f"template {self.template}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


class Renderer:
    """Finds `<name>.txt.j2` (required), `.html.j2` and `.subject.j2` (optional), preferring
    `types/<type>/<name>` over `<name>`, and the configured directory over the shipped one."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self.directories = tuple(directories)
        self._found: dict[tuple[str, str, str | None], str | None] = {}
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in directories]),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    @classmethod
    def from_config(cls, config: Config) -> Renderer:
        extra = [config.path(config.templates.dir)] if config.templates.dir else []
        for directory in extra:  # a misspelt path would quietly leave the shipped texts in use
            if not directory.is_dir():
                raise TemplateProblem(str(directory), "templates directory does not exist")
        return cls([*extra, templates_dir()])

    def exists(self, name: str, type_name: str | None = None) -> bool:
        return self._find(name, "txt", type_name) is not None

    def render(self, name: str, type_name: str | None, context: Mapping[str, Any]) -> Rendered:
        text_name = self._find(name, "txt", type_name)
        if text_name is None:
            raise TemplateProblem(f"{name}.txt.j2", "not found in " + self._where())
        html_name = self._find(name, "html", type_name)
        subject_name = self._find(name, "subject", type_name)
        text = self._render(text_name, context)
        html = self._render(html_name, context) if html_name else None
        subject = self._render(subject_name, context).strip() if subject_name else None
        return Rendered(subject=subject or None, text=text.strip() + "\n", html=html)

    def page(self, name: str, context: Mapping[str, Any]) -> str:
        """A web page (templates/web/…), escaped like every .html.j2."""
        self._compile(name)
        return self._render(name, context)

    def template_names(self) -> list[str]:
        """Every mail template by name (types/<type>/ overrides folded in), for `mailflow check`."""
        names = set()
        for listed in self.env.list_templates(extensions=["j2"]):
            parts = listed.removesuffix(".j2").rsplit(".", 1)[0].split("/")
            if parts[0] == "types" and len(parts) > 2:
                parts = parts[2:]
            if not parts[-1].startswith("_") and parts[0] != "web":
                names.add("/".join(parts))
        return sorted(names)

    def _find(self, name: str, kind: str, type_name: str | None) -> str | None:
        """The configured directory wins over the shipped one; within one directory the
        type's own template wins over the general one."""
        key = (name, kind, type_name)
        if key not in self._found:
            self._found[key] = self._search(name, kind, type_name)
        return self._found[key]

    def _search(self, name: str, kind: str, type_name: str | None) -> str | None:
        candidates = [f"{name}.{kind}.j2"]
        if type_name:
            candidates.insert(0, f"types/{type_name}/{name}.{kind}.j2")
        for directory in self.directories:
            for candidate in candidates:
                if (directory / candidate).is_file():
                    self._compile(candidate)
                    return candidate
        return None

    def _compile(self, name: str) -> None:
        try:
            self.env.get_template(name)
        except TemplateError as exc:
            raise TemplateProblem(name, f"{type(exc).__name__}: {exc}") from None

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except TemplateError as exc:
            raise TemplateProblem(name, f"{type(exc).__name__}: {exc}") from None

    def _where(self) -> str:
        return ", ".join(str(d) for d in self.directories)
