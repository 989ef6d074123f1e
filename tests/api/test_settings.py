"""`.env.example` documents every setting, and nothing that is not one; settings that do not
make sense are refused with a message naming them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from minio import Minio

from convertly.settings import Settings, SettingsError

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
