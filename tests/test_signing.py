"""Signing secrets: links are signed with CONVERTLY_SECRET_KEY and verified against it and
the older secrets of CONVERTLY_SECRET_KEYS_OLD, so the key can be rotated without breaking
the links already handed out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from convertly.errors import ForbiddenError
from convertly.settings import Secret, Settings
from convertly.signing import (
    Grant,
    UploadGrant,
    old_secrets,
    sign,
    sign_upload,
    verify,
    verify_upload,
)
from tests import images
from tests.api.library_support import fetch, upload
from tests.api.support import running_app


def _grant() -> Grant:
    """A download grant valid for ten minutes from now (not from collection: the whole
    suite may run longer than that before this module's turn)."""
    return Grant("k", "tn_1", "a.jpg", "image/jpeg", int(time.time()) + 600)


def _upload() -> UploadGrant:
    return UploadGrant("k", "tn_1", "file_1", 1000, int(time.time()) + 600)


def test_old_secrets_are_a_comma_separated_list() -> None:
    assert old_secrets("") == ()
    assert old_secrets(" one , two,,three ") == (b"one", b"two", b"three")


def test_links_of_an_old_secret_verify_and_others_do_not() -> None:
    grant = _grant()
    token = sign(grant, b"old")
    assert verify(token, b"new", old=[b"older", b"old"]) == grant
    with pytest.raises(ForbiddenError, match="invalid"):
        verify(token, b"new", old=[b"older"])
    with pytest.raises(ForbiddenError, match="invalid"):
        verify(token, b"new")
    expired = sign(Grant("k", "t", "a", "b", int(time.time()) - 1), b"old")
    with pytest.raises(ForbiddenError, match="expired"):
        verify(expired, b"new", old=[b"old"])


def test_upload_links_of_an_old_secret_verify() -> None:
    grant = _grant()
    upload_grant = _upload()
    token = sign_upload(upload_grant, b"old")
    assert verify_upload(token, b"new", old=[b"old"]) == upload_grant
    with pytest.raises(ForbiddenError, match="invalid"):
        verify_upload(token, b"new")
    # An old secret never turns a download link into an upload link.
    with pytest.raises(ForbiddenError, match="invalid"):
        verify_upload(sign(grant, b"old"), b"new", old=[b"old"])


def test_rotating_the_secret_keeps_outstanding_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    photo = images.jpeg(40, 30)
    first = Settings(data_dir=data, workers=1, secret_key=Secret("first"))
    with running_app("embedded", first) as env:
        tenant = env.new_tenant()
        record = upload(env.client, tenant, "a.jpg", photo)
        old_link = record["download_url"]
        assert fetch(env.client, old_link).content == photo

    rotated = Settings(data_dir=data, workers=1, secret_key=Secret("second"),
                       secret_keys_old=Secret("first"))
    with running_app("embedded", rotated) as env:
        assert fetch(env.client, old_link).content == photo
        response = env.client.get(f"/api/files/{record['id']}", headers={
            **tenant.headers, "Accept": "application/json"})
        new_link = response.json()["file"]["download_url"]
        token = new_link.rsplit("/", 1)[1]
        assert verify(token, b"second").key == verify(old_link.rsplit("/", 1)[1], b"first").key
        with pytest.raises(ForbiddenError):
            verify(token, b"first")

    only_second = Settings(data_dir=data, workers=1, secret_key=Secret("second"))
    with running_app("embedded", only_second) as env:
        assert env.client.get(old_link).status_code == 403
        assert fetch(env.client, new_link).content == photo
