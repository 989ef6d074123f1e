"""Folders on SQLite (embedded mode): the `folders` table."""

from __future__ import annotations

from collections.abc import Iterable

from convertly.state.records import Folder
from convertly.state.sqlite.database import Database

_COLUMNS = ("id", "tenant", "name", "color", "parent_id", "created_at")


class SqliteFolderStore:
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
