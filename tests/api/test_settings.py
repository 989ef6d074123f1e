"""`.env.example` and the README's settings table document every setting, and nothing else;
settings that do not make sense are refused with a message naming them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from convertly.settings import Settings, SettingsError, _default_workers

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"


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


def _readme_default(f: dataclasses.Field[Any]) -> str:
    """How the README's table writes a field's default."""
    if f.default_factory is _default_workers:
        return "CPU cores"
    assert f.default is not dataclasses.MISSING, f"{f.name}: say in the README what its default is"
    value = f.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) or "(empty)"


def test_readme_table_lists_every_setting_with_its_default() -> None:
    section = README.read_text().split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(CONVERTLY_[A-Z0-9_]+)` \| `([^`]*)` \|", section, flags=re.MULTILINE)
    table_rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) == len(table_rows), "a row of the settings table is not `NAME` | `default`"
    listed = [name for name, _ in rows]
    declared = [f.metadata["env"] for f in Settings.fields()]
    # Same names, each once, in the order settings.py declares them.
    assert listed == declared
    defaults = dict(rows)
    for f in Settings.fields():
        assert defaults[f.metadata["env"]] == _readme_default(f), f.metadata["env"]


S3 = {"CONVERTLY_S3_ACCESS_KEY": "access", "CONVERTLY_S3_SECRET_KEY": "secret"}


@pytest.mark.parametrize("endpoint", [
    "http://127.0.0.1:9000", "https://minio:9000", "minio:9000/path", "minio:9000?x=1",
    "user@minio:9000", "minio:port", "minio:0", "minio:70000", "minio:", ":9000",
])
def test_s3_endpoint_must_be_host_port(endpoint: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**S3, "CONVERTLY_S3_ENDPOINT": endpoint}, env_file=None)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("CONVERTLY_S3_ENDPOINT: expected host:port (e.g. minio:9000)")
    assert repr(endpoint) in message
    assert "CONVERTLY_S3_SECURE=true" in message


@pytest.mark.parametrize("endpoint", [
    "minio:9000", "127.0.0.1:9000", "[::1]:9000", "minio", "s3.amazonaws.com", "minio:9000/",
])
def test_s3_endpoint_host_port_is_accepted(endpoint: str) -> None:
    settings = Settings.from_env({**S3, "CONVERTLY_S3_ENDPOINT": endpoint}, env_file=None)
    assert settings.s3_endpoint == endpoint
    # What passes here, the S3 client takes as well (building it makes no request).
    Minio(settings.s3_endpoint, access_key="access", secret_key="secret")
