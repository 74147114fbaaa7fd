"""Every email we send is rendered here, from Jinja2 templates: the text, and the HTML
alternative made from that text unless a template of its own gives it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from markupsafe import Markup, escape

from mailflow.config import Config, ConfigError
from mailflow.i18n import speaking
from mailflow.i18n.catalogs import CatalogError, Catalogs, Used
from mailflow.i18n.choice import STAFF, Speech, served
from mailflow.resources import templates_dir


class TemplateProblem(Exception):
    """A template that is missing or fails to render, named so that a person can fix it."""

    def __init__(self, template: str, problem: str) -> None:
        super().__init__(template, problem)
        self.template, self.problem = template, problem

    def __str__(self) -> str:
        return f"template {self.template}: {self.problem}"


# RFC 3676 §4.3: "-- " on a line of its own starts the signature; "--" is what a template
# or an editor that trims trailing spaces leaves of it.
_SIGNATURE_SEPARATOR = re.compile(r"^-- ?$", re.MULTILINE)
SIGNATURE_SEPARATOR = "-- "
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_PARAGRAPH = '<p style="margin: 0 0 1em 0;">{}</p>'
LAYOUT = "_layout.html.j2"


def _line_html(line: str, emphasised: str) -> Markup:
    """One line: escaped, its indentation kept, links made links, the ticket tag bold."""
    parts, start = [], 0
    for url in _URL.finditer(line):
        parts.append(escape(line[start : url.start()]))
        parts.append(Markup('<a href="{0}">{0}</a>').format(url.group(0)))
        start = url.end()
    parts.append(escape(line[start:]))
    html = Markup("").join(parts)
    if emphasised:
        tag = escape(emphasised)
        html = html.replace(tag, Markup("<strong>{}</strong>").format(tag))
    indent = len(line) - len(line.lstrip(" "))
    return Markup("&nbsp;" * indent) + html[indent:]


def _block_html(block: str, emphasised: str) -> Markup:
    lines = block.splitlines()
    if all(line.lstrip().startswith("- ") for line in lines):
        items = (_line_html(line.lstrip()[2:], emphasised) for line in lines)
        return Markup("<ul>{}</ul>").format(
            Markup("").join(Markup("<li>{}</li>").format(i) for i in items)
        )
    joined = Markup("<br>\n").join(_line_html(line, emphasised) for line in lines)
    return Markup(_PARAGRAPH).format(joined)


def text_to_html(text: str, emphasised: str = "") -> tuple[Markup, Markup]:
    """The HTML of a mail's text: its paragraphs, and apart from them its signature (what
    follows the last "-- "), so that both parts of the mail say the same."""
    separators = list(_SIGNATURE_SEPARATOR.finditer(text))
    match = separators[-1] if separators else None
    body, signature = (text[: match.start()], text[match.end() :]) if match else (text, "")
    blocks = [b for b in re.split(r"\n[ \t]*\n", body.strip("\n")) if b.strip()]
    html = Markup("\n").join(_block_html(block, emphasised) for block in blocks)
    lines = signature.strip("\n").splitlines()
    return html, Markup("<br>\n").join(_line_html(line, emphasised) for line in lines)


def with_signature_separator(text: str) -> str:
    """Bare "--" lines written as the separator RFC 3676 defines."""
    return _SIGNATURE_SEPARATOR.sub(SIGNATURE_SEPARATOR, text)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


class Renderer:
    """Finds `<name>.txt.j2` (required), `.html.j2` and `.subject.j2` (optional), preferring
    `types/<type>/<name>` over `<name>`, and the configured directory over the shipped one;
    renders them in the reader's language with the catalogs of those directories."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self.directories = tuple(directories)
        try:
            self.catalogs = Catalogs.find(self.directories)
        except CatalogError as exc:
            raise TemplateProblem(str(exc.path), exc.problem) from None
        self._found: dict[tuple[str, str, str | None], str | None] = {}
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in directories]),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        speaking.install(self.env, self.catalogs)

    @classmethod
    def from_config(cls, config: Config) -> Renderer:
        extra = [config.path(config.templates.dir)] if config.templates.dir else []
        for directory in extra:  # a misspelt path would quietly leave the shipped texts in use
            if not directory.is_dir():
                raise TemplateProblem(str(directory), "templates directory does not exist")
        renderer = cls([*extra, templates_dir()])
        renderer.check_languages(config)
        return renderer

    @property
    def languages(self) -> tuple[str, ...]:
        return self.catalogs.languages

    def check_languages(self, config: Config) -> None:
        """Each language the configuration names has a catalog to speak it with."""
        named: list[tuple[str, str | None]] = [("instance.language", config.instance.language)]
        named += [(f"types[{i}].language", t.language) for i, t in enumerate(config.types)]
        for key, language in named:
            if language and served(language, self.languages) is None:
                raise ConfigError(
                    config.source,
                    key,
                    f"no catalog for {language!r} (there are {', '.join(self.languages)}); "
                    f"add locale/{language}/LC_MESSAGES/mailflow.po to the templates",
                )

    def exists(self, name: str, type_name: str | None = None) -> bool:
        return self._find(name, "txt", type_name) is not None

    def render(
        self,
        name: str,
        type_name: str | None,
        context: Mapping[str, Any],
        speech: Speech = STAFF,
    ) -> Rendered:
        """The mail in the reader's language, its dates in their time zone."""
        context = {**context, "language": speech.language, "timezone": speech.timezone}
        text_name = self._find(name, "txt", type_name)
        if text_name is None:
            raise TemplateProblem(f"{name}.txt.j2", "not found in " + self._where())
        html_name = self._find(name, "html", type_name)
        subject_name = self._find(name, "subject", type_name)
        text = with_signature_separator(self._render(text_name, context).strip()) + "\n"
        if html_name:
            html = self._render(html_name, context)
        else:  # one source: the HTML says what the text says
            body, signature = text_to_html(text, str(context.get("tag", "")))
            html = self._render(LAYOUT, {**context, "body": body, "signature": signature})
        subject = self._render(subject_name, context).strip() if subject_name else None
        return Rendered(subject=subject or None, text=text, html=html)

    def page(self, name: str, context: Mapping[str, Any], speech: Speech) -> str:
        """A web page (templates/web/…), escaped like every .html.j2, in the reader's language."""
        self._compile(name)
        return self._render(
            name, {**context, "language": speech.language, "timezone": speech.timezone}
        )

    def used_messages(self) -> list[Used]:
        """Every message the templates in use ask to be translated, for `mailflow check`."""
        used = []
        for name in self.env.list_templates(extensions=["j2"]):
            source, _file, _uptodate = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
            try:
                found = list(cast(Any, self.env).extract_translations(source))
            except TemplateError as exc:
                raise TemplateProblem(name, f"{type(exc).__name__}: {exc}") from None
            for line, function, message in found:
                # A call with variables gives (message, None, …); ngettext (one, many, None).
                parts = (message,) if isinstance(message, str) else tuple(message)
                if function == "ngettext" and len(parts) > 1 and parts[1]:
                    used.append(Used((str(parts[0]), str(parts[1])), f"{name}:{line}"))
                elif isinstance(parts[0], str):
                    used.append(Used(parts[0], f"{name}:{line}"))
        return used

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
