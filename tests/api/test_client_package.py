"""The Python client (clients/python, `convertly_client`) against a real server in both
modes: every method, sync and async, errors and retries, and an install in a fresh venv."""

from __future__ import annotations

import asyncio
import importlib.metadata
import io
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from convertly_client import (
    ApiError,
    AsyncClient,
    Client,
    ConnectionFailed,
    verify_signature,
)
from convertly_client.models import OPTION_FIELDS
from packaging.requirements import Requirement
from PIL import Image

from convertly import fields, webhooks
from convertly.settings import Settings
from convertly.state.records import TenantLimits
from tests import images
from tests.api.support import deployed, new_tenant, store_job
from tests.api.test_cli_client import Served, serving


@pytest.fixture(scope="module")
def server(mode: str, tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Served]:
    settings, cluster = deployed(
        mode, Settings(data_dir=tmp_path_factory.mktemp(f"pyclient-{mode}"), workers=2),
        request)
    with serving(mode, settings, cluster) as running:
        yield running


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_sync_client_every_method(server: Served, tmp_path: Path) -> None:
    key = new_tenant(server.services, "py").key
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(images.jpeg(120, 80))
    with Client(server.url, key) as client:
        # Sync conversions: a path and bytes, options for all and per file.
        done = client.convert([photo, ("b.png", images.png(60, 40))], format="webp",
                              per_file=[{"resize_width": 60}, {"resize_width": 30}],
                              resize="width")
        assert [f.filename for f in done.files] == ["photo.webp", "b.webp"]
        assert not done.saved and done.notice
        assert _size(client.read(done.files[0].download_url)) == (60, 40)
        saved = client.save(done.files[1].download_url, tmp_path / "b.webp")
        assert _size(saved.read_bytes()) == (30, 20)
        packed = client.compress([("c.jpg", images.jpeg(200, 150))], compression=40,
                                 save_to_storage=True)
        stored_id = packed.files[0].stored_file_id
        assert packed.saved and stored_id and packed.files[0].applied_quality == 40
        assert _size(client.read(packed.files[0].download_url)) == (200, 150)

        # Jobs: per-file formats, an archive, long-poll waiting, outputs, listing.
        created = client.create_job([photo, ("d.png", images.png(50, 50))],
                                    per_file=[{"format": "png"}, {"format": "jpg"}],
                                    create_archive=True, idempotency_key="py-1")
        again = client.create_job([photo, ("d.png", images.png(50, 50))],
                                  per_file=[{"format": "png"}, {"format": "jpg"}],
                                  create_archive=True, idempotency_key="py-1")
        assert again.job_id == created.job_id and again.replayed and not created.replayed
        updates: list[str] = []
        job = client.wait_job(created.job_id, timeout=60,
                              on_update=lambda j: updates.append(j.status))
        assert job.status == "completed" and job.finished and updates[-1] == "completed"
        assert [r.output_filename for r in job.results] == ["photo.png", "d.jpg"]
        assert job.archive is not None and job.created_at is not None
        (tmp_path / "out").mkdir()
        paths = client.download_outputs(job, tmp_path / "out")
        with zipfile.ZipFile(paths[0]) as archive:
            assert sorted(archive.namelist()) == ["d.jpg", "photo.png"]
        assert client.get_job(created.job_id, wait=5).status == "completed"
        listed = client.list_jobs(limit=1)
        assert listed.pagination.total == 1 and listed.jobs[0].job_id == created.job_id
        with pytest.raises(ApiError) as finished:
            client.cancel_job(created.job_id)
        assert finished.value.status == 409 and finished.value.code == "CONFLICT"

        # A media tool, as a job.
        queued = client.queue_tool("thumbnail", photo, options={"width": "30"})
        tool_job = client.wait_job(queued.job_id, timeout=60)
        assert tool_job.status == "completed" and tool_job.raw["tool"] == "thumbnail"
        assert _size(client.read(tool_job.results[0].download_url or "")) == (30, 20)

        # Storage and folders.
        folder = client.create_folder("shots", color="#aabbcc")
        assert [f.name for f in client.list_folders()] == ["shots"]
        (uploaded,) = client.upload_files([photo], folder_id=folder.id)
        assert uploaded.folder_id == folder.id and uploaded.size_bytes == photo.stat().st_size
        record = client.get_file(uploaded.id)
        assert record.filename == "photo.jpg" and record.download_url
        assert client.read(record.download_url) == photo.read_bytes()
        in_folder = client.list_files(folder=folder.id)
        assert [f.id for f in in_folder.files] == [uploaded.id]
        client.delete_file(uploaded.id)
        with pytest.raises(ApiError) as gone:
            client.get_file(uploaded.id)
        assert gone.value.status == 404 and gone.value.code == "NOT_FOUND"
        client.delete_folder(folder.id)
        assert client.list_folders() == []

        # Webhooks.
        hook = client.create_webhook("https://hooks.example.com/convertly",
                                     events=["conversion.completed"])
        assert hook.secret and hook.secret.startswith("whsec_")
        assert [(w.id, w.secret) for w in client.list_webhooks()] == [(hook.id, None)]
        client.delete_webhook(hook.id)
        assert client.list_webhooks() == []
        with pytest.raises(ApiError) as bad:
            client.create_webhook("not a url")
        assert bad.value.status == 400 and bad.value.code and bad.value.message


def test_async_client_every_method(server: Served, tmp_path: Path) -> None:
    key = new_tenant(server.services, "py-async").key
    photo = tmp_path / "photo.png"
    photo.write_bytes(images.png(64, 48))

    async def main() -> None:
        async with AsyncClient(server.url, key) as client:
            done = await client.convert([photo], format="jpg", resize="width",
                                        resize_width=32)
            assert _size(await client.read(done.files[0].download_url)) == (32, 24)
            saved = await client.save(done.files[0].download_url, tmp_path / "a.jpg")
            assert _size(saved.read_bytes()) == (32, 24)
            packed = await client.compress([photo], lossless=True)
            assert packed.files[0].format == "png"
            created = await client.create_job([photo, ("x.txt", b"not an image")],
                                              format="webp", priority="high")
            job = await client.wait_job(created.job_id, timeout=60)
            assert [r.status for r in job.results] == ["completed", "failed"]
            assert job.results[1].error_code and job.failed_files == 1
            paths = await client.save_into(job.results[0].download_url or "", tmp_path,
                                           "photo.webp")
            assert paths.name == "photo.webp"
            again = await client.save_into(job.results[0].download_url or "", tmp_path,
                                           "photo.webp")
            assert again.name == "photo-1.webp"  # never overwrites
            assert (await client.get_job(created.job_id)).job_id == created.job_id
            assert (await client.list_jobs()).jobs[0].job_id == created.job_id
            queued = await client.queue_tool("strip-metadata", photo)
            assert (await client.wait_job(queued.job_id, timeout=60)).status == "completed"
            folder = await client.create_folder("f")
            (stored,) = await client.upload_files([("n.png", images.png(8, 8))],
                                                  folder_id=folder.id)
            assert (await client.get_file(stored.id)).folder_id == folder.id
            assert [f.id for f in (await client.list_files(folder=folder.id)).files] == [
                stored.id]
            await client.delete_file(stored.id)
            await client.delete_folder(folder.id)
            assert await client.list_folders() == []
            hook = await client.create_webhook("https://hooks.example.com/a")
            assert [w.id for w in await client.list_webhooks()] == [hook.id]
            await client.delete_webhook(hook.id)
            with pytest.raises(ApiError) as missing:
                await client.cancel_job("no-such-job")
            assert missing.value.status == 404

    asyncio.run(main())


def test_a_pending_job_is_cancelled(server: Served, tmp_path: Path) -> None:
    tenant = new_tenant(server.services, "py-cancel")
    # Stored without being handed to a worker: it stays pending until cancelled.
    pending = store_job(server.services, tenant, [("a.png", images.png(8, 8))],
                        tmp_path / "spool")
    with Client(server.url, tenant.key) as client:
        assert client.get_job(pending.id).status == "pending"
        job = client.cancel_job(pending.id)
        assert job.cancelled and job.status == "failed" and job.finished


def test_errors_and_retries(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", workers=1)
    with serving("embedded", settings, None) as running:
        tenant = new_tenant(running.services, "limited")
        with Client(running.url, "cvt_wrong") as client, pytest.raises(ApiError) as refused:
            client.list_jobs()
        assert refused.value.status == 401 and refused.value.code
        with Client(running.url, tenant.key) as client, pytest.raises(ApiError) as bad_link:
            client.save(f"{running.url}/api/download/not-a-token", tmp_path / "x.png")
        assert bad_link.value.status >= 400 and bad_link.value.code
        assert not (tmp_path / "x.png").exists()
        # One request every 2 s: a GET waits out its 429 (Retry-After) and succeeds; an
        # upload is not sent twice, and its error carries Retry-After.
        running.services.keys.set_limits(tenant.tenant, TenantLimits(rate=0.5, burst=1))
        with Client(running.url, tenant.key) as client:
            client.list_jobs()
            started = time.monotonic()
            assert client.list_jobs().jobs == ()
            assert time.monotonic() - started >= 1.0
            with pytest.raises(ApiError) as limited:
                client.convert([("a.png", images.png(8, 8))], format="jpg")
            assert limited.value.status == 429 and limited.value.code == "RATE_LIMITED"
            assert limited.value.retry_after is not None and limited.value.retry_after > 0
        with Client(running.url, tenant.key, retries=0) as client:
            with pytest.raises(ApiError) as again:
                client.list_jobs()
            assert again.value.status == 429
    with Client(running.url, "k") as client, pytest.raises(ConnectionFailed) as down:
        client.list_jobs()
    assert "connection refused" in down.value.message


def test_webhook_signatures_from_the_server_verify() -> None:
    body = b'{"id": "evt_1", "type": "conversion.completed"}'
    now = int(time.time())
    header = webhooks.sign("whsec_abc", body, now)
    assert verify_signature("whsec_abc", body, header)
    assert not verify_signature("whsec_abc", body + b" ", header)
    assert not verify_signature("whsec_other", body, header)
    assert not verify_signature("whsec_abc", body, webhooks.sign("whsec_abc", body, now - 900))
    assert not verify_signature("whsec_abc", body, "t=x,v1=y")
    assert not verify_signature("whsec_abc", body, None)


def test_options_are_the_servers_fields() -> None:
    """Each option's wire names are a field of convertly/fields.py and its per-file twin."""
    by_name = {f.name: f for f in fields.FIELDS}
    for option, (single, array) in OPTION_FIELDS.items():
        assert single in by_name, option
        assert by_name[single].array == array, option


def test_installs_alone_in_a_fresh_venv(tmp_path: Path) -> None:
    """The client package installs with nothing but its own dependencies (from wheels made
    here of what this venv has, so no network), none of the server's, and converts."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(wheels),
                    str(root / "clients" / "python")], check=True, timeout=120)
    for name in _requirements_closure("convertly-client"):
        _repack(name, wheels)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--quiet", "--no-index", "--find-links", str(wheels), "convertly-client"],
                   check=True, timeout=120)
    settings = Settings(data_dir=tmp_path / "data", workers=1)
    with serving("embedded", settings, None) as running:
        key = new_tenant(running.services, "venv").key
        script = (
            "import importlib.util, sys\n"
            "for name in ('pyvips', 'celery', 'minio', 'convertly', 'starlette', 'PIL'):\n"
            "    assert importlib.util.find_spec(name) is None, name\n"
            "from convertly_client import Client\n"
            "with Client(sys.argv[1], sys.argv[2]) as c:\n"
            "    out = c.convert([('a.png', bytes.fromhex(sys.argv[3]))], format='jpg')\n"
            "    print(len(c.read(out.files[0].download_url)))\n"
        )
        run = subprocess.run([str(python), "-c", script, running.url, key,
                              images.png(16, 16).hex()], capture_output=True, text=True,
                             timeout=60, check=False, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) > 100


def _requirements_closure(name: str) -> set[str]:
    """`name`'s dependencies and theirs, as installed here (markers for this Python)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            key = req.name.lower().replace("_", "-")
            if key not in seen:
                seen.add(key)
                todo.append(key)
    return seen


def _repack(name: str, directory: Path) -> None:
    """A wheel of the installed distribution `name`, from the files its RECORD lists."""
    dist = importlib.metadata.distribution(name)
    files = [f for f in dist.files or [] if not str(f).startswith("..")]
    tag = next((line.split(":", 1)[1].strip()
                for line in (dist.read_text("WHEEL") or "").splitlines()
                if line.startswith("Tag:")), "py3-none-any")
    project = dist.metadata["Name"].replace("-", "_")
    path = directory / f"{project}-{dist.version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for entry in files:
            located = Path(str(entry.locate()))
            if located.is_file() and "__pycache__" not in entry.parts:
                wheel.write(located, str(entry))
