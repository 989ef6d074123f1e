"""Object storage for sources and outputs: local disk (embedded default) or S3."""

from __future__ import annotations

from convertly.settings import Settings
from convertly.storage.base import Storage


def build_storage(settings: Settings, *, probe: bool = True) -> Storage:
    """The storage the settings select: S3 when CONVERTLY_S3_ENDPOINT is set, else local disk.
    Without `probe`, an S3 storage sends nothing before its `check()` or first use."""
    if settings.s3_endpoint:
        from convertly.storage.credentials import CredentialChain
        from convertly.storage.s3 import S3Storage

        return S3Storage(
            settings.s3_endpoint,
            str(settings.s3_access_key),
            str(settings.s3_secret_key),
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region or None,
            public_url=settings.s3_public_url or None,
            sign_payload=settings.s3_sign_payload,
            probe=probe,
            credentials=None if settings.s3_access_key else CredentialChain(
                settings.s3_credentials_endpoint or None),
        )
    from convertly.storage.local import LocalStorage

    return LocalStorage(settings.data_dir / "storage")
