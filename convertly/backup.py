"""`convertly backup PATH`: a consistent copy of the embedded state, taken while the server
runs.

PATH becomes a data directory of its own, so restoring is pointing CONVERTLY_DATA_DIR at (a
copy of) it:
- `convertly.db`: SQLite's online backup API copies the database as it was at one moment (a
  read transaction; in WAL mode writers go on meanwhile), whatever the other processes write.
- `secret_key`: the signing secret, when it was generated in the data directory (a secret set
  in CONVERTLY_SECRET_KEY lives in the settings, not here), so old download links still work.
- `storage/`: the local storage, copied after the snapshot. Objects are written before the
  records that name them, so every object the snapshot names is copied, except one deleted
  while the copy ran (counted as `missing`: its record then answers 404 on download).
  Objects written after the snapshot are copied too and named by nothing.

Distributed mode keeps its state in Redis and its files in S3: nothing here can copy those
consistently, so `plan_for_remote` says what to back up there instead.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from convertly.settings import Settings
from convertly.state.sqlite.database import DATABASE_NAME

SECRET_NAME = "secret_key"
STORAGE_NAME = "storage"


class BackupError(Exception):
    """The backup cannot be made (a destination in use, no database); the message says why."""


@dataclass(frozen=True)
class BackupReport:
    database: Path
    jobs: int
    stored_files: int
    api_keys: int
    secret_copied: bool
    objects: int = 0
    object_bytes: int = 0
    missing: int = 0


def backup(settings: Settings, dest: Path, *, storage: bool = True) -> BackupReport:
    """Copy the embedded state (and, with `storage`, the local storage) into `dest`, a new
    or empty directory."""
    source = settings.data_dir / DATABASE_NAME
    if not source.is_file():
        raise BackupError(f"no state database at {source} (CONVERTLY_DATA_DIR); nothing to "
                          "back up.")
    dest = dest.resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory; choose a new path.")
    if dest == settings.data_dir or dest.is_relative_to(settings.data_dir):
        raise BackupError(f"{dest} is inside the data directory {settings.data_dir}; choose "
                          "a path outside it.")
    dest.mkdir(parents=True, exist_ok=True)

    database = dest / DATABASE_NAME
    _snapshot(source, database)
    jobs, stored, keys, file_keys = _census(database)

    secret_copied = False
    secret = settings.data_dir / SECRET_NAME
    if not settings.secret_key and secret.is_file():
        shutil.copy2(secret, dest / SECRET_NAME)
        os.chmod(dest / SECRET_NAME, 0o600)
        secret_copied = True

    report = BackupReport(database=database, jobs=jobs, stored_files=stored, api_keys=keys,
                          secret_copied=secret_copied)
    if storage and not settings.s3_endpoint:
        objects, size = _copy_tree(settings.data_dir / STORAGE_NAME, dest / STORAGE_NAME)
        missing = sum(1 for key in file_keys if not (dest / STORAGE_NAME / key).is_file())
        report = BackupReport(**{**report.__dict__, "objects": objects, "object_bytes": size,
                                 "missing": missing})
    return report


def _snapshot(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        # All pages in one step: one read transaction, so one moment of the database.
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _census(database: Path) -> tuple[int, int, int, list[str]]:
    conn = sqlite3.connect(database)
    try:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        keys = conn.execute("SELECT count(*) FROM api_keys").fetchone()[0]
        file_keys = [row[0] for row in conn.execute("SELECT key FROM files")]
    finally:
        conn.close()
    return int(jobs), len(file_keys), int(keys), file_keys


def _copy_tree(source: Path, target: Path) -> tuple[int, int]:
    """Copy the objects under `source` (not the half-written ones in `.tmp`); an object
    deleted while the copy runs is skipped. Return how many objects and bytes."""
    count = size = 0
    target.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not (here == source and d == ".tmp")]
        out = target / here.relative_to(source)
        out.mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                shutil.copy2(here / name, out / name)
            except FileNotFoundError:
                continue
            count += 1
            size += (out / name).stat().st_size
    return count, size


def plan_for_remote(settings: Settings) -> list[str]:
    """What an operator backs up when the state or the files are not on this disk."""
    lines: list[str] = []
    if settings.distributed:
        lines.append(
            "Job state, API keys, file records and webhooks live in Redis "
            f"({'CONVERTLY_STATE_URL' if settings.state_url else 'CONVERTLY_BROKER_URL'}): "
            "back it up there. Run `redis-cli BGSAVE`, wait until `LASTSAVE` changes and copy "
            "its dump.rdb, or run Redis with `appendonly yes` and copy the AOF directory.")
    if settings.distributed and not settings.s3_endpoint:
        lines.append(
            f"Files live on local disk under {settings.data_dir / STORAGE_NAME}: copy them "
            "(`rsync -a --exclude .tmp`) after Redis.")
    if settings.distributed and not settings.secret_key:
        lines.append(f"The signing secret is {settings.data_dir / SECRET_NAME}: keep a copy.")
    if settings.s3_endpoint:
        lines.append(
            f"Files live in the S3 bucket {settings.s3_bucket!r} at {settings.s3_endpoint}: "
            "back it up with the storage's own tools (bucket versioning or replication, "
            "`aws s3 sync`, `rclone sync`), after the state.")
    if settings.secret_key:
        lines.append("The signing secret is CONVERTLY_SECRET_KEY in your settings: keep it "
                     "with the backup, or restored download links stop working.")
    return lines
