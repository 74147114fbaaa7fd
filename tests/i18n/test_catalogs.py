"""The catalogs: `mailflow check` fails naming the catalog, the language and the message a
template uses that a catalog lacks, has fuzzy or untranslated; an administrator's catalog
overrides the shipped one message by message; a translation that does not fit its
placeholders is reported and falls back to English; the shipped catalogs are complete and
the .pot is current."""

from __future__ import annotations

import gettext
from pathlib import Path

from babel.messages.pofile import read_po
from click.testing import CliRunner, Result

from mailflow.cli import cli
from mailflow.i18n.catalogs import catalog_path
from mailflow.i18n.speaking import own_messages
from mailflow.render import Renderer
from mailflow.resources import templates_dir

SHIPPED = templates_dir()
NEW_LINE = "We also open on Saturdays."
OVERRIDE = (
    "{{ greeting(customer) }}\n\n{% trans %}" + NEW_LINE + "{% endtrans +%}\n\n-- \n"
    "{{ instance.name }}\n"
)


def _po(language: str, messages: dict[str, str], fuzzy: bool = False) -> str:
    flag = "#, fuzzy\n" if fuzzy else ""
    body = "".join(f'{flag}msgid "{k}"\nmsgstr "{v}"\n\n' for k, v in messages.items())
    return (
        f'msgid ""\nmsgstr ""\n"Language: {language}\\n"\n'
        '"Content-Type: text/plain; charset=utf-8\\n"\n\n' + body
    )


def _administrators_dir(tmp_path: Path, catalogs: dict[str, str]) -> Path:
    directory = tmp_path / "templates"
    (directory / "customer").mkdir(parents=True)
    (directory / "customer" / "auto_reply.txt.j2").write_text(OVERRIDE)
    (directory / "types" / "ticket" / "customer").mkdir(parents=True)
    (directory / "types" / "ticket" / "customer" / "auto_reply.txt.j2").write_text(OVERRIDE)
    for language, text in catalogs.items():
        path = catalog_path(directory, language)
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
    return directory


def _check(tmp_path: Path, database_url: str, templates: Path | None) -> Result:
    config = tmp_path / "mailflow.toml"
    extra = f'[templates]\ndir = "{templates}"\n' if templates else ""
    config.write_text(f'[database]\nurl = "{database_url}"\n{extra}')
    return CliRunner().invoke(cli, ["--config", str(config), "check"])


def test_check_passes_on_the_shipped_templates_and_catalogs(
    tmp_path: Path, database_url: str
) -> None:
    result = _check(tmp_path, database_url, None)
    assert result.exit_code == 0, result.output
    assert "catalogs: ok (en, fr, pl;" in result.output


def test_check_fails_naming_the_catalog_the_language_and_the_missing_message(
    tmp_path: Path, database_url: str
) -> None:
    result = _check(tmp_path, database_url, _administrators_dir(tmp_path, {}))

    assert result.exit_code == 78, result.output
    for language in ("fr", "pl"):
        expected = (
            f"mailflow: catalog {catalog_path(SHIPPED, language)}: {language}: lacks "
            f"'{NEW_LINE}' (used in customer/auto_reply.txt.j2:3)"
        )
        assert expected in result.output


def test_a_fuzzy_translation_in_an_administrators_catalog_fails_the_check(
    tmp_path: Path, database_url: str
) -> None:
    catalogs = {
        "fr": _po("fr", {NEW_LINE: "Nous ouvrons aussi le samedi."}, fuzzy=True),
        "pl": _po("pl", {NEW_LINE: ""}),
    }
    directory = _administrators_dir(tmp_path, catalogs)

    result = _check(tmp_path, database_url, directory)

    assert result.exit_code == 78, result.output
    french, polish = catalog_path(directory, "fr"), catalog_path(directory, "pl")
    assert f"catalog {french}: fr: has only a fuzzy translation of '{NEW_LINE}'" in result.output
    assert f"catalog {polish}: pl: has no translation of '{NEW_LINE}'" in result.output


def test_an_administrators_catalog_adds_to_the_shipped_one(
    tmp_path: Path, database_url: str
) -> None:
    catalogs = {
        "fr": _po("fr", {NEW_LINE: "Nous ouvrons aussi le samedi."}),
        "pl": _po("pl", {NEW_LINE: "Pracujemy również w soboty.", "Hello,": "Witamy,"}),
    }
    directory = _administrators_dir(tmp_path, catalogs)

    assert _check(tmp_path, database_url, directory).exit_code == 0
    renderer = Renderer([directory, SHIPPED])
    polish = renderer.catalogs.translations("pl")
    assert polish.gettext(NEW_LINE) == "Pracujemy również w soboty."
    assert polish.gettext("Hello,") == "Witamy,", "the administrator's wins"
    assert polish.gettext("Help centre") == "Centrum pomocy", "the shipped one fills in"


def test_a_translation_whose_placeholders_differ_is_reported_and_english_is_used(
    tmp_path: Path, database_url: str
) -> None:
    wrong = "Nous avons reçu votre message (ticket %(number)s) à 100 %."
    catalogs = {
        "fr": _po("fr", {NEW_LINE: "Nous ouvrons aussi le samedi.", "Hello %(name)s,": wrong}),
        "pl": _po("pl", {NEW_LINE: "Pracujemy również w soboty."}),
    }
    directory = _administrators_dir(tmp_path, catalogs)

    result = _check(tmp_path, database_url, directory)

    assert result.exit_code == 78
    assert "fr: has a translation whose %(placeholders)s differ" in result.output
    assert "'Hello %(name)s,'" in result.output
    french = Renderer([directory, SHIPPED]).catalogs.translations("fr")
    assert french.gettext("Hello %(name)s,") == "Hello %(name)s,"


def test_a_broken_catalog_stops_check_with_its_name(tmp_path: Path, database_url: str) -> None:
    directory = _administrators_dir(tmp_path, {"fr": 'msgid "unterminated\n'})

    result = _check(tmp_path, database_url, directory)

    assert result.exit_code == 78
    assert f"template {catalog_path(directory, 'fr')}:" in result.output


def test_a_configured_language_needs_a_catalog(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "mailflow.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[instance]\nlanguage = "de"\n')

    result = CliRunner().invoke(cli, ["--config", str(config), "check"])

    assert result.exit_code == 78
    assert "instance.language: no catalog for 'de' (there are en, fr, pl)" in result.output


def test_the_shipped_catalogs_are_read_from_their_po_files_with_no_compiled_copy() -> None:
    assert not list(SHIPPED.glob("locale/**/*.mo"))
    renderer = Renderer([SHIPPED])
    assert renderer.languages == ("en", "fr", "pl")
    assert isinstance(renderer.catalogs.translations("fr"), gettext.GNUTranslations)


def test_the_pot_template_holds_exactly_the_messages_in_use() -> None:
    """`pybabel extract` was run after the templates last changed (README, Language)."""
    with (SHIPPED / "locale" / "mailflow.pot").open("rb") as file:
        pot = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(file) if m.id}
    used = [*Renderer([SHIPPED]).used_messages(), *own_messages()]
    assert pot == {m.id if isinstance(m.id, str) else m.id[0] for m in used}
