"""`convertly backup PATH` while a server writes, and a restore: a server started on the copy
serves the same keys, jobs and files (old download links included)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from convertly.settings import Settings
from tests import images
from tests.api.library_support import fetch, list_files, upload
from tests.api.support import SHARED_LIMITS, create_job, get_job, running_app, wait_for_job


def _backup(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "convertly"
    assert command.is_file(), f"{command} is missing: run `make setup` to install the command"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVERTLY_")}
    env.update({"CONVERTLY_DATA_DIR": str(data_dir), **extra})
    # cwd is the data dir's parent so that no developer's .env is read.
    return subprocess.run([str(command), "backup", *args], cwd=data_dir.parent, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_backup_while_writing_then_restore(tmp_path: Path) -> None:
    data, copy = tmp_path / "data", tmp_path / "backup"
    with running_app("embedded", Settings(data_dir=data, workers=1, **SHARED_LIMITS)) as env:
        tenant = env.new_tenant()
        job = wait_for_job(env.client, tenant, create_job(
            env.client, tenant, [("a.jpg", images.jpeg(64, 48))], format="png",
            createArchive=True))
        assert job["status"] == "completed", job
        before = {}
        for i in range(3):
            photo = images.jpeg(32, 24, seed=i)
            before[upload(env.client, tenant, f"before-{i}.jpg", photo)["id"]] = photo

        # A writer uploads without pause while the backup runs in another process.
        written: dict[str, bytes] = {}
        stop = threading.Event()

        def write() -> None:
            n = 0
            while not stop.is_set():
                photo = images.jpeg(24, 16, seed=100 + n)
                written[upload(env.client, tenant, f"during-{n}.jpg", photo)["id"]] = photo
                n += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            while len(written) < 2 and writer.is_alive():
                stop.wait(0.01)
            done_first = set(written)
            result = _backup(data, str(copy))
            during = len(written) - len(done_first)
        finally:
            stop.set()
            writer.join()
        assert result.returncode == 0, result.stderr
        assert during >= 1, "the writer wrote nothing while the backup ran"
        assert "State:" in result.stdout and "To restore" in result.stdout
        old_link = env.client.get(f"/api/files/{next(iter(before))}", headers={
            **tenant.headers, "Accept": "application/json"}).json()["file"]["download_url"]

    restored_settings = Settings(data_dir=copy, workers=1, **SHARED_LIMITS)
    with running_app("embedded", restored_settings) as env:
        # The same key, the same job with its outputs and archive.
        again = get_job(env.client, tenant, job["jobId"])
        assert again["status"] == "completed"
        assert [r["outputFilename"] for r in again["results"]] == ["a.png"]
        assert images.decode(fetch(env.client, again["results"][0]["downloadUrl"]).content
                             ).size == (64, 48)
        assert fetch(env.client, again["archive"]["downloadUrl"]).content[:2] == b"PK"
        # Every file stored before the backup, and each one the snapshot names, with its
        # bytes; a link handed out before the backup still works (same signing secret).
        listing = list_files(env.client, tenant, limit=100)
        total = listing["pagination"]["total"]
        assert total <= 1 + len(before) + len(written)
        named = [f["id"] for f in listing["files"]]
        for offset in range(100, total, 100):
            named += [f["id"] for f in list_files(env.client, tenant, limit=100,
                                                  offset=offset)["files"]]
        assert set(before) | done_first <= set(named)
        for file_id in named:
            entry = env.client.get(f"/api/files/{file_id}", headers={
                **tenant.headers, "Accept": "application/json"}).json()["file"]
            content = fetch(env.client, entry["download_url"]).content
            assert content == {**before, **written}.get(file_id, content)
        assert fetch(env.client, old_link).content == before[next(iter(before))]
        # The restored server goes on writing.
        upload(env.client, tenant, "after.jpg", images.jpeg(16, 16))


def test_backup_refuses_a_used_destination_and_says_what_to_do_when_distributed(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    no_db = _backup(data, str(tmp_path / "out"))
    assert no_db.returncode == 1 and "no state database" in no_db.stderr

    with running_app("embedded", Settings(data_dir=data, workers=1)):
        pass
    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("x")
    refused = _backup(data, str(used))
    assert refused.returncode == 1 and "not an empty directory" in refused.stderr
    inside = _backup(data, str(data / "backup"))
    assert inside.returncode == 1 and "inside the data directory" in inside.stderr

    # Nothing is contacted: the settings alone say where the state and files live.
    remote = _backup(data, str(tmp_path / "remote"),
                     CONVERTLY_BROKER_URL="redis://127.0.0.1:9/0",
                     CONVERTLY_S3_ENDPOINT="127.0.0.1:9", CONVERTLY_S3_ACCESS_KEY="a",
                     CONVERTLY_S3_SECRET_KEY="b", CONVERTLY_SECRET_KEY="s")
    assert remote.returncode == 1
    assert "BGSAVE" in remote.stderr and "appendonly" in remote.stderr
    assert "S3 bucket 'convertly'" in remote.stderr and "CONVERTLY_SECRET_KEY" in remote.stderr
    assert not (tmp_path / "remote").exists()
