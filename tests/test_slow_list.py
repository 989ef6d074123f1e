"""The slow-test list in tests/conftest.py names only tests that exist, so a moved or renamed
test file cannot silently slip into `make test-fast` or out of the slow set."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import SLOW_PATHS, SLOW_TESTS

ROOT = Path(__file__).resolve().parent.parent


def test_every_slow_path_exists() -> None:
    missing = [path for path in SLOW_PATHS if not (ROOT / path).exists()]
    assert not missing


def test_every_slow_test_is_defined_where_it_is_listed() -> None:
    missing = []
    for node in SLOW_TESTS:
        path, _, name = node.partition("::")
        source = ROOT / path
        if not source.is_file() or not re.search(
                rf"^def {re.escape(name)}\(", source.read_text("utf-8"), re.M):
            missing.append(node)
    assert not missing
