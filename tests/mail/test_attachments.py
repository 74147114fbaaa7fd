"""Attachment names we store, and winmail.dat opened."""

from __future__ import annotations

import pytest

from mailflow.mail.attachments import expand_tnef, prepared, safe_filename
from mailflow.mail.parse import ParsedAttachment
from tests.support import winmail_dat


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\windows\\system32\\evil.exe", "evil.exe"),
        ("bad\x00na\x1fme.txt", "bad_na_me.txt"),
        ('what?*:"<>|.doc', "what_.doc"),
        (".hidden", "hidden"),
        ("", "attachment"),
        ("///", "attachment"),
        ("Überweisung März.pdf", "Überweisung März.pdf"),
    ],
)
def test_names_lose_paths_and_dangerous_characters(given: str, kept: str) -> None:
    assert safe_filename(given) == kept


def test_long_names_are_cut_but_keep_their_extension() -> None:
    name = safe_filename("ä" * 300 + ".docx")
    assert name.endswith(".docx")
    assert len(name.encode()) <= 200
    name.encode().decode("utf-8")  # not cut inside a character


def test_winmail_dat_gives_its_files_with_guessed_types() -> None:
    tnef = ParsedAttachment(
        "winmail.dat", "application/ms-tnef", winmail_dat([("a.pdf", b"%PDF"), ("../b.txt", b"hi")])
    )
    assert [(a.filename, a.content_type, a.data) for a in expand_tnef(tnef)] == [
        ("a.pdf", "application/pdf", b"%PDF"),
        ("b.txt", "text/plain", b"hi"),
    ]


def test_damaged_winmail_dat_is_kept_as_it_is() -> None:
    broken = ParsedAttachment("winmail.dat", "application/ms-tnef", b"\x78\x9f\x3e\x22garbage")
    assert prepared((broken,)) == [broken]
