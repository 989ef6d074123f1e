"""The command line's job options send only fields of the request-field table
(`convertly/fields.py`), with values the table's parsers accept, and offer the table's
choices; the dashboard's convert form sends only table fields too."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from convertly import commands, fields
from convertly.cli import build_parser
from convertly.fields import Route

JOB_FIELDS = {name: field for field in fields.fields_for(Route.JOBS) for name in field.names}
DASHBOARD = Path(fields.__file__).parent / "dashboard" / "convert.js"

CONVERT_EVERYTHING = [
    "convert", "a.png", "-f", "jpeg", "-r", "square", "-c", "70", "--width", "64",
    "--page", "2", "--no-auto-orient", "--mono", "--strip-metadata", "--archive",
    "--archive-format", "7z", "--priority", "high",
]
COMPRESS_EVERYTHING = [
    "compress", "a.png", "--target-size", "5000", "--lossless", "--strip-metadata",
    "--page", "3", "--no-auto-orient", "--archive", "--archive-format", "tgz",
    "--priority", "low",
]


@pytest.mark.parametrize(("argv", "build"), [
    (CONVERT_EVERYTHING, commands.convert_fields),
    (COMPRESS_EVERYTHING, commands.compress_fields),
    (["compress", "a.png", "--quality", "40"], commands.compress_fields),
], ids=["convert", "compress", "compress-quality"])
def test_every_option_becomes_a_table_field_the_server_parses(
        argv: list[str], build: Callable[[argparse.Namespace], dict[str, str]]) -> None:
    sent = build(build_parser().parse_args(argv))
    assert set(sent) <= set(JOB_FIELDS), set(sent) - set(JOB_FIELDS)
    for name, value in sent.items():
        JOB_FIELDS[name].parse(value, name, None)  # raises InvalidFieldError if refused


def _choices(command: str, option: str) -> tuple[str, ...]:
    commands_action = next(a for a in build_parser()._actions
                           if isinstance(a, argparse._SubParsersAction))
    sub = commands_action.choices[command]
    action = next(a for a in sub._actions if option in a.option_strings)
    return tuple(action.choices)


@pytest.mark.parametrize("command", ["convert", "compress"])
def test_choices_are_the_table_choices(command: str) -> None:
    assert _choices(command, "--archive-format") == fields.BY_NAME["archiveFormat"].choices
    assert _choices(command, "--priority") == fields.BY_NAME["priority"].choices
    if command == "convert":
        assert _choices(command, "--resize") == fields.BY_NAME["resize"].choices


def test_the_dashboard_sends_only_table_fields() -> None:
    sent = set(re.findall(r'data\.append\(\s*"([A-Za-z]+)"', DASHBOARD.read_text("utf-8")))
    assert sent, "the dashboard's form fields were not found"
    assert sent <= set(JOB_FIELDS), sent - set(JOB_FIELDS)


def test_tool_options_are_key_value_pairs_by_their_api_names() -> None:
    args = build_parser().parse_args(["tool", "thumbnail", "a.jpg", "--opt", "width=320",
                                      "--opt", "text=a=b", "--opt", "width=100"])
    assert (args.name, args.file) == ("thumbnail", "a.jpg")
    assert commands.tool_options(args.opt) == {"width": "100", "text": "a=b"}
    for bad in ("width", "=3"):
        with pytest.raises(commands.UsageError, match="key=value"):
            commands.tool_options([bad])
