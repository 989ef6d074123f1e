"""A typed client for a Convertly server, sync (`Client`) and async (`AsyncClient`).

    from convertly_client import Client

    with Client("http://localhost:8000", "cvt_...") as client:
        result = client.convert(["photo.jpg"], format="webp", resize="website")
        client.save(result.files[0].download_url, "photo.webp")
"""

from convertly_client._body import MultipartBody, Upload, reserve, safe_filename
from convertly_client.aio import AsyncClient
from convertly_client.client import Client
from convertly_client.errors import ApiError, ClientError, ConnectionFailed
from convertly_client.models import (
    Archive,
    Conversion,
    ConvertedFile,
    FileList,
    FileOptions,
    FileResult,
    Folder,
    Job,
    JobCreated,
    JobList,
    Pagination,
    StoredFile,
    Webhook,
)
from convertly_client.webhooks import SIGNATURE_HEADER, verify_signature

__version__ = "0.1.0"

__all__ = [
    "SIGNATURE_HEADER",
    "ApiError",
    "Archive",
    "AsyncClient",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "Conversion",
    "ConvertedFile",
    "FileList",
    "FileOptions",
    "FileResult",
    "Folder",
    "Job",
    "JobCreated",
    "JobList",
    "MultipartBody",
    "Pagination",
    "StoredFile",
    "Upload",
    "Webhook",
    "reserve",
    "safe_filename",
    "verify_signature",
]
