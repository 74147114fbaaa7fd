"""Language settings in the configuration: checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.config import ConfigError, load_config


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mailflow.toml"
    path.write_text(text)
    load_config(path)


def test_an_unknown_language_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, '[instance]\nlanguage = "xx"\n')
    assert error.value.key == "instance.language"
    assert error.value.problem == "'xx' is not a language such as en, fr or pl"


def test_a_types_language_is_checked_too(tmp_path: Path) -> None:
    text = (
        '[[types]]\nname = "ticket"\naddresses = ["support@example.com"]\n'
        'statuses = ["open"]\ndefault_status = "open"\nlanguage = "klingon"\n'
    )
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text)
    assert error.value.key == "types[0].language"
    assert error.value.problem == "'klingon' is not a language such as en, fr or pl"


def test_a_usergroup_field_may_not_take_the_name_of_a_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, '[[people.usergroup_fields]]\nname = "language"\n')
    assert "'language' is a setting of every usergroup" in error.value.problem


def test_a_regional_language_is_written_as_babel_names_it(tmp_path: Path) -> None:
    path = tmp_path / "mailflow.toml"
    path.write_text('[instance]\nlanguage = "fr-CA"\n')
    assert load_config(path).instance.language == "fr_CA"
