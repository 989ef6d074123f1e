"""The file and folder store contracts, on both engines: SQLite (embedded) and Redis
(distributed), including data written by the version before folders and listings."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import redis

from convertly.state.base import FileStore, FolderStore
from convertly.state.records import FileQuery, Folder, StoredFile
from convertly.state.redis.files import RedisFileStore
from convertly.state.redis.folders import RedisFolderStore
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.files import SqliteFileStore
from convertly.state.sqlite.folders import SqliteFolderStore
from tests.state.conftest import ENGINES

Stores = tuple[FileStore, FolderStore]


@pytest.fixture(params=ENGINES)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    if request.param == "sqlite":
        db = Database(tmp_path / "state.db")
        return SqliteFileStore(db), SqliteFolderStore(db)
    client = request.getfixturevalue("redis_client")
    return RedisFileStore(client), RedisFolderStore(client)


def record(file_id: str, created: float, *, tenant: str = "t1", mime_type: str = "image/png",
           **extra: object) -> StoredFile:
    return StoredFile(id=file_id, tenant=tenant, key=f"tenants/{tenant}/files/{file_id}/x",
                      filename=f"{file_id}.png", mime_type=mime_type, size_bytes=10,
                      created_at=created, **extra)  # type: ignore[arg-type]


def ids(found: tuple[list[StoredFile], int]) -> tuple[list[str], int]:
    return [r.id for r in found[0]], found[1]


def test_search_lists_newest_first_without_temporary_records(stores: Stores) -> None:
    files, _ = stores
    for file_id, created in (("a", 1.0), ("b", 3.0), ("c", 2.0), ("d", 3.0)):
        files.add(record(file_id, created))
    files.add(record("tmp", 4.0, temporary=True, expires_at=9e9))
    files.add(record("other", 5.0, tenant="t2"))
    everything = FileQuery()
    # Same creation time: the larger id first.
    assert ids(files.search("t1", everything, limit=10, offset=0)) == (["d", "b", "c", "a"], 4)
    assert ids(files.search("t1", everything, limit=2, offset=1)) == (["b", "c"], 4)
    assert ids(files.search("t1", FileQuery(text="B"), limit=10, offset=0)) == (["b"], 1)
    assert ids(files.search("t2", everything, limit=10, offset=0)) == (["other"], 1)
    assert files.get("tmp", "t1") is not None  # temporary records are found by id
    assert files.get("a", "t2") is None


def test_records_added_together_are_each_found_and_counted(stores: Stores) -> None:
    files, _ = stores
    added = files.add_many([record("a", 1.0, job_id="j1"), record("b", 2.0, job_id="j1")])
    assert [r.id for r in added] == ["a", "b"]
    assert ids(files.search("t1", FileQuery(), limit=10, offset=0)) == (["b", "a"], 2)
    assert files.stored_bytes("t1") == 20


def test_moves_keep_folder_listings_right(stores: Stores) -> None:
    files, _ = stores
    files.add(record("a", 1.0, folder_id="f1"))
    files.add(record("b", 2.0))
    in_f1, root = FileQuery(folder_id="f1"), FileQuery(root_only=True)
    assert ids(files.search("t1", in_f1, limit=10, offset=0)) == (["a"], 1)
    assert ids(files.search("t1", root, limit=10, offset=0)) == (["b"], 1)
    moved = files.update("b", "t1", folder_id="f1", filename="renamed.png", tags=("x",))
    assert moved is not None and (moved.folder_id, moved.tags) == ("f1", ("x",))
    files.update("a", "t1", folder_id="f2")
    files.update("a", "t1", folder_id=None)
    assert ids(files.search("t1", in_f1, limit=10, offset=0)) == (["b"], 1)
    assert ids(files.search("t1", FileQuery(folder_id="f2"), limit=10, offset=0)) == ([], 0)
    assert ids(files.search("t1", root, limit=10, offset=0)) == (["a"], 1)
    assert ids(files.search("t1", FileQuery(tags=(("X",),)), limit=10, offset=0)) == (["b"], 1)
    assert files.update("b", "t2", filename="stolen") is None
    expired = files.update("a", "t1", expires_at=1.0)
    assert expired is not None and expired.expires_at == 1.0
    assert files.get("a", "t1") is None and [r.id for r in files.expired(2.0)] == ["a"]
    files.update("a", "t1", expires_at=None)
    # A pending record becomes listed when it is completed, and unlisted when removed.
    files.add(record("p", 3.0, temporary=True, expires_at=9e9, folder_id="f1"))
    assert ids(files.search("t1", in_f1, limit=10, offset=0)) == (["b"], 1)
    files.update("p", "t1", temporary=False, expires_at=None, created_at=4.0)
    assert ids(files.search("t1", in_f1, limit=10, offset=0)) == (["p", "b"], 2)
    assert files.expired(9e10) == []
    files.remove("b")
    assert ids(files.search("t1", in_f1, limit=10, offset=0)) == (["p"], 1)
    assert ids(files.search("t1", FileQuery(), limit=10, offset=0)) == (["p", "a"], 2)


def test_duration_and_page_count_are_kept(stores: Stores) -> None:
    files, _ = stores
    files.add(record("clip", 1.0, width=1080, height=1920, duration=12.5))
    files.add(record("doc", 2.0, page_count=3))
    clip, doc = files.get("clip", "t1"), files.get("doc", "t1")
    assert clip is not None and (clip.width, clip.height, clip.duration) == (1080, 1920, 12.5)
    assert doc is not None and (doc.page_count, doc.duration) == (3, None)
    renamed = files.update("doc", "t1", filename="renamed.pdf")
    assert renamed is not None and renamed.page_count == 3
    vertical = FileQuery(orientation="vertical")
    assert ids(files.search("t1", vertical, limit=10, offset=0)) == (["clip"], 1)


def test_facets_count_the_files_a_query_matches(stores: Stores) -> None:
    files, _ = stores
    files.add(record("a", 1.0, width=10, height=20, tags=("Beach", "summer", "beach")))
    files.add(record("b", 2.0, width=20, height=10, tags=("beach",), mime_type="Image/JPEG"))
    files.add(record("c", 3.0, width=5, height=5, tags=("city",), folder_id="f1"))
    files.add(record("d", 4.0, tags=("city", "beach"), mime_type="application/pdf"))
    files.add(record("tmp", 5.0, tags=("beach",), temporary=True, expires_at=9e9))
    files.add(record("other", 6.0, tenant="t2", tags=("beach",)))
    which = ("tags", "orientation", "mimeType")
    assert files.facets("t1", FileQuery(), which, 10) == {
        # A file counts once per tag whatever its case; shown in its least form.
        "tags": [("Beach", 3), ("city", 2), ("summer", 1)],
        "orientation": [("horizontal", 1), ("square", 1), ("vertical", 1)],
        "mimeType": [("image/png", 2), ("application/pdf", 1), ("image/jpeg", 1)],
    }
    # The counts follow the query: tags (a group of forms each), folder, orientation.
    seaside = FileQuery(tags=(("seaside", "BEACH"),))
    assert ids(files.search("t1", seaside, limit=10, offset=0)) == (["d", "b", "a"], 3)
    assert files.facets("t1", seaside, ["tags"], 1) == {"tags": [("Beach", 3)]}
    both = FileQuery(tags=(("beach",), ("city", "town")), all_tags=True)
    assert ids(files.search("t1", both, limit=10, offset=0)) == (["d"], 1)
    assert files.facets("t1", FileQuery(folder_id="f1"), ["orientation", "tags"], 10) == {
        "orientation": [("square", 1)], "tags": [("city", 1)]}
    assert files.facets("t1", FileQuery(orientation="vertical"), ["mimeType"], 10) == {
        "mimeType": [("image/png", 1)]}
    assert files.facets("t3", FileQuery(), which, 10) == {
        "tags": [], "orientation": [], "mimeType": []}


def test_folders(stores: Stores) -> None:
    _, folders = stores
    top = Folder("f1", "t1", "Top", "#000000", None, 1.0)
    folders.add(top)
    folders.add(Folder("f2", "t1", "Child", "#ffffff", "f1", 2.0))
    folders.add(Folder("f3", "t2", "Theirs", "#ffffff", None, 3.0))
    assert folders.get("f1", "t1") == top
    assert folders.get("f1", "t2") is None
    assert sorted(f.id for f in folders.all("t1")) == ["f1", "f2"]
    renamed = Folder("f1", "t1", "Renamed", "#000000", None, 1.0)
    assert folders.update(renamed)
    assert folders.get("f1", "t1") == renamed
    folders.remove(["f1", "f2"], "t1")
    assert folders.all("t1") == []
    # A folder removed meanwhile is not brought back by an update.
    assert not folders.update(renamed)
    assert folders.get("f1", "t1") is None
    assert [f.id for f in folders.all("t2")] == ["f3"]


def test_sqlite_database_of_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE files (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, key TEXT NOT NULL,"
            " filename TEXT NOT NULL, mime_type TEXT NOT NULL, size_bytes INTEGER NOT NULL,"
            " folder_id TEXT, width INTEGER, height INTEGER, job_id TEXT,"
            " temporary INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, expires_at REAL)")
        conn.execute("INSERT INTO files (id, tenant, key, filename, mime_type, size_bytes,"
                     " created_at) VALUES ('old', 't1', 'k', 'old.png', 'image/png', 5, 1.0)")
    files = SqliteFileStore(Database(path))
    found, total = files.search("t1", FileQuery(), limit=10, offset=0)
    assert total == 1 and found[0].tags == () and found[0].description is None
    assert (found[0].duration, found[0].page_count) == (None, None)
    assert files.update("old", "t1", tags=("kept",)) is not None
    assert ids(files.search("t1", FileQuery(tags=(("kept",),)), limit=10, offset=0)) == (["old"], 1)


def test_redis_records_of_the_previous_version(redis_client: redis.Redis) -> None:
    # What the previous version stored: the record and the tenant's set, no listings.
    for file_id, created, temporary in (("old1", 1.0, False), ("old2", 2.0, False),
                                        ("tmp", 3.0, True)):
        old = {"id": file_id, "tenant": "t1", "key": f"k/{file_id}",
               "filename": f"{file_id}.png", "mime_type": "image/png", "size_bytes": 5,
               "width": None, "height": None, "job_id": None, "temporary": temporary,
               "created_at": created, "expires_at": 9e9 if temporary else None}
        redis_client.set(f"cv:file:{file_id}", json.dumps(old))
        redis_client.zadd("cv:files:t1", {file_id: created})
    files = RedisFileStore(redis_client)
    assert ids(files.search("t1", FileQuery(), limit=10, offset=0)) == (["old2", "old1"], 2)
    assert ids(files.search("t1", FileQuery(root_only=True), limit=10, offset=0)) == (
        ["old2", "old1"], 2)
    old1 = files.get("old1", "t1")
    assert old1 is not None and old1.tags == () and old1.folder_id is None
