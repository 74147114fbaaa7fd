"""The translation catalogs, `locale/<language>/LC_MESSAGES/mailflow.po` in a templates
directory: read as they are (there is nothing to compile), an administrator's messages over
the shipped ones, a missing or unfinished translation left in the templates' English."""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po

DOMAIN = "mailflow"
SOURCE_LANGUAGE = "en"  # the language the templates are written in
LOCALE_DIR = "locale"


class CatalogError(Exception):
    """A catalog that cannot be read, named so that a person can fix it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(path, problem)
        self.path, self.problem = path, problem

    def __str__(self) -> str:
        return f"catalog {self.path}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Used:
    """A message a template (or mailflow's own code) asks to be translated, and where."""

    id: str | tuple[str, str]  # a plural message is (singular, plural)
    where: str


@dataclass(frozen=True, slots=True)
class Gap:
    """A used message that a language's catalog lacks, or has untranslated or fuzzy."""

    catalog: Path
    language: str
    message: str
    problem: str
    where: str

    def __str__(self) -> str:
        return (
            f"catalog {self.catalog}: {self.language}: {self.problem} "
            f"{self.message!r} (used in {self.where})"
        )


def catalog_path(directory: Path, language: str) -> Path:
    return directory / LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(path: Path, language: str) -> Catalog:
    try:
        with path.open("rb") as file:
            return read_po(file, locale=language, domain=DOMAIN, abort_invalid=True)
    except (OSError, PoFileError, ValueError) as exc:
        raise CatalogError(path, str(exc)) from None


def _merged(paths: Sequence[Path], language: str) -> Catalog:
    """The first path wins over the later ones, message by message."""
    catalog = _read(paths[-1], language)
    for path in reversed(paths[:-1]):
        for message in _read(path, language):
            if message.id:
                catalog.delete(message.id)  # setting over it would keep the old translation
                catalog[message.id] = message
    return catalog


def _translations(catalog: Catalog) -> gettext.GNUTranslations:
    """What gettext reads: untranslated and fuzzy messages, and those whose placeholders do
    not fit, left out, so that they fall back to the template's English, not to nothing or
    to an error while a mail is rendered."""
    usable = Catalog(locale=catalog.locale, domain=DOMAIN)
    usable.mime_headers = catalog.mime_headers
    for message in catalog:
        if message.id and not _problem(catalog, message.id):
            usable[message.id] = message
    compiled = BytesIO()
    write_mo(compiled, usable, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class Catalogs:
    """Every language that has a catalog in one of the template directories, plus English."""

    def __init__(self, files: dict[str, tuple[Path, ...]]) -> None:
        self.files = files  # language → its catalogs, the winning one first
        self._catalogs = {language: _merged(paths, language) for language, paths in files.items()}
        self._translations = {
            language: _translations(catalog) for language, catalog in self._catalogs.items()
        }
        self.languages = tuple(sorted({SOURCE_LANGUAGE, *files}))

    @classmethod
    def find(cls, directories: Sequence[Path]) -> Catalogs:
        """The catalogs of the template directories, the first directory winning."""
        files: dict[str, list[Path]] = {}
        for directory in directories:
            for path in sorted((directory / LOCALE_DIR).glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
                files.setdefault(path.parents[1].name, []).append(path)
        return cls({language: tuple(paths) for language, paths in files.items()})

    def translations(self, language: str) -> gettext.NullTranslations:
        found = self._translations.get(language)
        return found if found is not None else gettext.NullTranslations()

    def gaps(self, used: Iterable[Used]) -> list[Gap]:
        """Each used message each catalog lacks, or has untranslated or fuzzy."""
        used = list(used)
        gaps = []
        for language, catalog in sorted(self._catalogs.items()):
            for message in used:
                problem = _problem(catalog, message.id)
                if problem:
                    text = message.id if isinstance(message.id, str) else message.id[0]
                    gaps.append(
                        Gap(self.files[language][0], language, text, problem, message.where)
                    )
        return gaps


_PLACEHOLDER = re.compile(r"%\((\w+)\)")


def _problem(catalog: Catalog, msgid: str | Sequence[str]) -> str | None:
    key = msgid if isinstance(msgid, str) else msgid[0]
    found = catalog.get(key)
    if found is None:
        return "lacks"
    if found.fuzzy:
        return "has only a fuzzy translation of"
    strings = (found.string,) if isinstance(found.string, str) else tuple(found.string or ())
    if not isinstance(found.id, str) and len(strings) < catalog.num_plurals:
        return f"has fewer than its {catalog.num_plurals} plural forms of"
    if not all(strings):
        return "has no translation of"
    if not all(_fits(found.id, string) for string in strings):
        return "has a translation whose %(placeholders)s differ from those of"
    return None


def _fits(msgid: str | Sequence[str], translation: str) -> bool:
    """Every template string is %-formatted with the message's own placeholders, so a
    translation may use only those, and writes a percent sign as %%."""
    original = msgid if isinstance(msgid, str) else " ".join(msgid)
    names = {name: 1 for name in _PLACEHOLDER.findall(original)}
    if not isinstance(msgid, str):
        names.setdefault("num", 1)
    try:
        translation % names
    except (KeyError, ValueError, TypeError):
        return False
    return True
