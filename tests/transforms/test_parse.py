"""The one validator of transform parameters, against the image rows of the table."""

from __future__ import annotations

from typing import Any

import pytest

from convertly.errors import InvalidFieldError
from convertly.transforms import table
from convertly.transforms.parse import parse
from convertly.transforms.table import Param, ParamKind
from convertly.transforms.values import TRANSPARENT, Colour, Length, Point


def refused(raw: dict[str, Any], params: tuple[Param, ...] = table.IMAGE) -> InvalidFieldError:
    with pytest.raises(InvalidFieldError) as caught:
        parse(raw, params)
    return caught.value


def test_text_values_become_typed_values_under_canonical_names_with_defaults() -> None:
    got = parse({"w": "640", "height": "50%", "gravity": "North-West", "bg": "#ff000080",
                 "rot": "-90", "flip": "yes", "fp": "30%,0.6", "f": "JPEG", "q": "very_high",
                 "blur": "1.5", "r": 12}, table.IMAGE)
    assert got["width"] == Length(640)
    assert got["height"] == Length(50, percent=True)
    assert got["position"] == "top-left"
    assert got["background"] == Colour(255, 0, 0, 128)
    assert got["rotate"] == -90.0 and got["flip"] is True and got["flop"] is False
    assert got["focalPoint"] == Point(0.3, 0.6)
    assert got["format"] == "jpg" and got["quality"] == "very_high"
    assert got["blur"] == 1.5 and got["radius"] == 12
    # absent: the default, parsed like a sent value; no default: None
    assert got["fit"] == "cover" and got["borderColor"] == Colour(0, 0, 0)
    assert got["brightness"] == 1.0 and got["sharpen"] == 0.0
    assert got["trim"] is False and got["pad"] == 0
    assert set(got) == {p.name for p in table.IMAGE}
    assert parse({}, table.IMAGE)["width"] is None


def test_the_name_wins_over_an_alias_and_empty_values_are_absent() -> None:
    got = parse({"w": "10", "width": "20", "q": "", "quality": 70, "bg": "transparent"},
                table.IMAGE)
    assert got["width"] == Length(20) and got["quality"] == 70
    assert got["background"] == TRANSPARENT
    assert parse({"q": "  "}, table.IMAGE)["quality"] is None
    assert parse({"background": "#abc"}, table.IMAGE)["background"] == Colour(170, 187, 204)


@pytest.mark.parametrize(("raw", "field", "words"), [
    ({"width": "0"}, "width", "from 1 to 16384"),
    ({"w": "12.5"}, "w", "whole pixels"),
    ({"width": "150%"}, "width", "at most 100%"),
    ({"fit": "stretch"}, "fit", "cover, contain, fill, inside, outside"),
    ({"g": "face"}, "g", "entropy, attention"),
    ({"quality": "101"}, "quality", "very_low"),
    ({"q": "ultra"}, "q", "from 1 to 100"),
    ({"rotate": "nan"}, "rotate", "from -360 to 360"),
    ({"blur": "1e400"}, "blur", "from 0 to 100"),
    ({"flip": "maybe"}, "flip", "true or false"),
    ({"bg": "#12345"}, "bg", "hex colour"),
    ({"borderColor": "red"}, "borderColor", "hex colour"),
    ({"fp": "0.5"}, "fp", "x,y"),
    ({"focalPoint": "1.5,0.5"}, "focalPoint", "x,y"),
    ({"pad": True}, "pad", "whole number"),
    ({"format": "bmp"}, "format", "jpg, png"),
    ({"width": ["1", "2"]}, "width", "one value"),
])
def test_bad_values_are_refused_naming_the_field_as_sent(
    raw: dict[str, Any], field: str, words: str
) -> None:
    error = refused(raw)
    assert error.field == field and error.code == "INVALID_FIELD"
    assert f"Field '{field}'" in error.message and words in error.message


def test_unknown_names_are_refused_naming_them_and_the_known_ones() -> None:
    error = refused({"width": "10", "colour": "red", "zoom": "2"}, table.OUTPUT)
    assert error.field == "width"  # OUTPUT has no width either
    assert "'width', 'colour', 'zoom'" in error.message
    assert "the options here are: format, quality" in error.message
    assert error.detail["unknown"] == ["width", "colour", "zoom"]
    assert error.detail["known"] == ["format", "quality"]


def test_seconds_text_and_file_kinds() -> None:
    params = (
        Param("start", ParamKind.SECONDS, "", low=0, high=86_400),
        Param("label", ParamKind.TEXT, "", high=5),
        Param("image", ParamKind.FILE, ""),
    )
    got = parse({"start": "01:02.5", "label": "hi", "image": " f_1 "}, params)
    assert got == {"start": 62.5, "label": "hi", "image": "f_1"}
    assert parse({"start": "1:00:00"}, params)["start"] == 3600.0
    assert parse({"start": 2}, params)["start"] == 2.0
    for bad in ("-1", "00:61:00", "1:2:3:4", "soon"):
        assert refused({"start": bad}, params).field == "start"
    assert "0 to 5 characters" in refused({"label": "toolong"}, params).message


def test_every_image_row_is_well_formed() -> None:
    names = [n for p in table.IMAGE for n in p.names]
    assert len(names) == len(set(names))
    for param in table.IMAGE:
        assert param.help.endswith((".", ")"))
        for spelling, choice in param.synonyms:
            assert choice in param.choices and spelling not in param.choices
        if param.kind in (ParamKind.LENGTH, ParamKind.INTEGER, ParamKind.NUMBER):
            assert param.low is not None and param.high is not None
