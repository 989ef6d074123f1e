"""`Storage.presigned_put_url`: direct uploads straight into the storage service."""

from __future__ import annotations

import httpx

from convertly.storage.base import Storage
from convertly.storage.s3 import S3Storage
from tests.infra import SeaweedS3
from tests.storage.conftest import BUCKET, empty_bucket


def test_presigned_put_url(storage: Storage, backend: str) -> None:
    url = storage.presigned_put_url("uploads/u1/big.bin", 60)
    if backend == "local":
        assert url is None  # the API receives local uploads itself
        return
    assert url is not None
    response = httpx.put(url, content=b"direct bytes",
                         headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    with storage.open("uploads/u1/big.bin") as fh:
        assert fh.read() == b"direct bytes"
    # The signature covers the key: another object cannot be written with it.
    other = url.replace("big.bin", "other.bin", 1)
    assert httpx.put(other, content=b"x").status_code == 403
    assert not storage.exists("uploads/u1/other.bin")


def test_presigned_put_url_for_a_public_address(seaweed: SeaweedS3) -> None:
    """With CONVERTLY_S3_PUBLIC_URL, upload URLs are signed for the address clients use
    (here `localhost` for a server the API reaches as 127.0.0.1)."""
    empty_bucket(seaweed, BUCKET)
    port = seaweed.endpoint.rsplit(":", 1)[1]
    storage = S3Storage(seaweed.endpoint, seaweed.access_key, seaweed.secret_key, BUCKET,
                        public_url=f"http://localhost:{port}")
    url = storage.presigned_put_url("uploads/u2/photo.jpg", 60)
    assert url.startswith(f"http://localhost:{port}/{BUCKET}/uploads/u2/photo.jpg?")
    response = httpx.put(url, content=b"\xff\xd8\xff public")
    assert response.status_code == 200, response.text
    assert storage.size("uploads/u2/photo.jpg") == len(b"\xff\xd8\xff public")
    # Signed for localhost: the same URL sent to 127.0.0.1 does not pass.
    internal = url.replace(f"localhost:{port}", seaweed.endpoint, 1)
    assert httpx.put(internal, content=b"x").status_code == 403
    empty_bucket(seaweed, BUCKET)
