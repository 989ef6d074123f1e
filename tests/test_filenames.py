"""The one name rule (`convertly.filenames`): what is refused, what is neutralised, and the
entry names of a bundle."""

from __future__ import annotations

import pytest

from convertly import filenames
from convertly.errors import InvalidFieldError


@pytest.mark.parametrize("name", [
    "a\x00b.png", "a\nb.png", "tab\there.png", "del\x7f.png", "c1\x85.png",
    "invoice\u202egpj.exe", "x\u2066y.png", "mark\u200f.png", "arabic\u061c.png",
    "line\u2028sep.png", "a/b.png", "a\\b.png", ".", "..", "", "   ", "x" * 256,
    "lone\udfff.png",
])
def test_names_the_rule_refuses(name: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        filenames.check(name, "files", file_index=2)
    assert caught.value.detail == {"field": "files", "fileIndex": 2}
    assert "'files' (file 3)" in caught.value.message


@pytest.mark.parametrize("name", [
    "photo.jpg", "  holiday photo.jpg ", "x" * 255, "résumé.pdf", "写真.png", "..hidden",
    "a..b.png", "family \U0001f468\u200d\U0001f469.png", "نامه\u200c.txt",
])
def test_names_the_rule_accepts(name: str) -> None:
    assert filenames.check(name, "filename") == name.strip()


def test_neutral_replaces_what_the_rule_refuses() -> None:
    assert filenames.neutral("a\x00b.png") == "a_b.png"
    assert filenames.neutral("invoice\u202egpj.exe") == "invoice_gpj.exe"
    assert filenames.neutral("a/b\\c") == "a_b_c"
    assert filenames.neutral("..") == "file"
    assert filenames.neutral("") == "file"
    assert filenames.neutral("photo.jpg") == "photo.jpg"


def test_bundle_names_are_unique_and_keep_their_extension() -> None:
    names = filenames.bundle_names(
        ["a.webp", "A.webp", "a (2).webp", "a.webp", "notes", "notes", "a\x00b.png"])
    assert names == ["a.webp", "A (2).webp", "a (2) (2).webp", "a (3).webp", "notes",
                     "notes (2)", "a_b.png"]
    assert len({n.casefold() for n in names}) == len(names)


def test_bundle_names_fit_a_file_system_and_keep_the_extension() -> None:
    long = "é" * 250 + ".webp"  # 505 bytes in UTF-8
    first, second = filenames.bundle_names([long, long])
    for name in (first, second):
        assert len(name.encode()) <= filenames.MAX_NAME_BYTES
        assert name.endswith(".webp")
    assert second.endswith(" (2).webp")
    assert first != second
