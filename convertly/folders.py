"""Folders of stored files, per tenant: a tree (each folder has at most one parent)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Protocol

from convertly.state.sqlite.database import Database

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


class FolderStoreLike(Protocol):
    """Folder records (SQLite in embedded mode, Redis in distributed mode). Every call is
    scoped to one tenant: another tenant's folder does not exist for it."""

    def add(self, folder: Folder) -> None: ...

    def get(self, folder_id: str, tenant: str) -> Folder | None: ...

    def all(self, tenant: str) -> list[Folder]:
        """Every folder of the tenant, in no particular order."""
        ...

    def update(self, folder: Folder) -> bool:
        """Store new values for an existing folder; False (and nothing stored) when it was
        removed in the meantime."""
        ...

    def remove(self, folder_ids: Iterable[str], tenant: str) -> None: ...


_COLUMNS = ("id", "tenant", "name", "color", "parent_id", "created_at")


class FolderStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, folder: Folder) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                f"INSERT INTO folders ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
                tuple(getattr(folder, c) for c in _COLUMNS),
            )

    def get(self, folder_id: str, tenant: str) -> Folder | None:
        row = self.db.read().execute(
            f"SELECT {', '.join(_COLUMNS)} FROM folders WHERE id = ? AND tenant = ?",
            (folder_id, tenant),
        ).fetchone()
        return None if row is None else Folder(*row)

    def all(self, tenant: str) -> list[Folder]:
        rows = self.db.read().execute(
            f"SELECT {', '.join(_COLUMNS)} FROM folders WHERE tenant = ?", (tenant,))
        return [Folder(*r) for r in rows.fetchall()]

    def update(self, folder: Folder) -> bool:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE folders SET name = ?, color = ?, parent_id = ?"
                " WHERE id = ? AND tenant = ?",
                (folder.name, folder.color, folder.parent_id, folder.id, folder.tenant),
            )
        return cursor.rowcount == 1

    def remove(self, folder_ids: Iterable[str], tenant: str) -> None:
        with self.db.transaction() as conn:
            conn.executemany("DELETE FROM folders WHERE id = ? AND tenant = ?",
                             [(fid, tenant) for fid in folder_ids])
