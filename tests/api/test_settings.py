"""`.env.example` documents every setting, and nothing that is not one."""

from __future__ import annotations

import re
from pathlib import Path

from convertly.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_documents_every_setting() -> None:
    text = ENV_EXAMPLE.read_text()
    documented = re.findall(r"^#?\s*(CONVERTLY_[A-Z0-9_]+)=", text, flags=re.MULTILINE)
    declared = [f.metadata["env"] for f in Settings.fields()]
    assert sorted(set(documented)) == sorted(declared)
    assert len(documented) == len(set(documented)), "a setting is documented twice"
    for name in declared:
        # Each one comes with at least one line of explanation just above it.
        explained = rf"^# (?!CONVERTLY_)[^\n]*\n(# (?!CONVERTLY_)[^\n]*\n)*#?\s*{name}="
        assert re.search(explained, text, flags=re.MULTILINE), name
