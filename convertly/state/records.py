"""The records the state stores carry (jobs, `Job` and its parts, are in `convertly.models`):
frozen dataclasses, the same on both engines.

    StoredFile, FileQuery   what `storedFileId` points at and what `/api/files` lists
    Folder                  folders of stored files, per tenant
    ApiKey                  an API key's record
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ApiKey:
    """An API key's record; the key itself is never stored, only its hash (`convertly.auth`).
    `prefix` is the key's public beginning, by which it is looked up."""

    prefix: str
    name: str
    tenant: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


# --- stored files -----------------------------------------------------------------------
# A record is *listed* unless it is temporary: a short-lived sync output, a zip of files, or
# a direct upload that is not complete yet.


@dataclass(frozen=True)
class StoredFile:
    id: str
    tenant: str
    key: str
    filename: str
    mime_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    job_id: str | None = None
    temporary: bool = False
    created_at: float = 0.0
    expires_at: float | None = None
    folder_id: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredFile:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["tags"] = tuple(values.get("tags") or ())
        values["temporary"] = bool(values.get("temporary", False))
        return cls(**values)


def new_file_id() -> str:
    return "file_" + secrets.token_hex(12)


ORIENTATIONS = ("vertical", "horizontal", "square")


@dataclass(frozen=True)
class FileQuery:
    """Which of a tenant's listed files a search returns. Empty fields do not filter.

    `folder_id` with `root_only=False`: files in that folder; `root_only=True`: files in no
    folder. `text`: a case-insensitive substring of the filename. `tags`: files carrying any
    of them (all of them with `all_tags`), compared case-insensitively. `orientation`:
    vertical, horizontal or square, from the recorded width and height."""

    folder_id: str | None = None
    root_only: bool = False
    text: str | None = None
    mime_prefix: str | None = None
    tags: tuple[str, ...] = ()
    all_tags: bool = False
    orientation: str | None = None

    @property
    def scans(self) -> bool:
        """True when the query filters on more than the folder (a search must read records)."""
        return bool(self.text or self.mime_prefix or self.tags or self.orientation)

    def matches(self, record: StoredFile) -> bool:
        if record.temporary:
            return False
        if self.root_only and record.folder_id is not None:
            return False
        if self.folder_id is not None and record.folder_id != self.folder_id:
            return False
        if self.text and self.text.casefold() not in record.filename.casefold():
            return False
        if self.mime_prefix and not record.mime_type.lower().startswith(
                self.mime_prefix.lower()):
            return False
        if self.tags:
            have = {t.casefold() for t in record.tags}
            wanted = [t.casefold() for t in self.tags]
            hits = [t in have for t in wanted]
            if not (all(hits) if self.all_tags else any(hits)):
                return False
        if self.orientation:
            if record.width is None or record.height is None:
                return False
            shape = ("square" if record.width == record.height
                     else "vertical" if record.height > record.width else "horizontal")
            if shape != self.orientation:
                return False
        return True


# --- folders ----------------------------------------------------------------------------
# A tree per tenant: each folder has at most one parent.

DEFAULT_COLOR = "#64748b"


@dataclass(frozen=True)
class Folder:
    id: str
    tenant: str
    name: str
    color: str
    parent_id: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def new_folder_id() -> str:
    return "fld_" + secrets.token_hex(12)
