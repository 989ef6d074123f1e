"""The composition root: `build_services(settings)` builds what a process needs (the state
`convertly.state.build_state` chooses, storage, the converter registry, the signing secret)
into one `Services` value that every domain function takes as its first argument.

Also here, because every layer above needs them: each task's private scratch directory, and
where a job's files live in storage. The domain modules sit above: `jobs` (creating jobs),
`conversions` (sync requests), `pipeline` (what happens to a queued file, and a job's
finalisation), `library` (stored files and folders), `webhooks`, `retention`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from convertly import diskspace, jobevents
from convertly.auth import ApiKeys
from convertly.converters.builtin import default_registry
from convertly.converters.registry import Registry
from convertly.converters.tools.registry import ToolRegistry, default_tools
from convertly.models import FileSpec, OutputFormat
from convertly.recent import Recent
from convertly.settings import Settings
from convertly.signing import load_or_create_secret, old_secrets
from convertly.state import build_state
from convertly.state.base import (
    FileStore,
    FolderStore,
    JobStore,
    RateLimitStore,
    TaxonomyStore,
    WebhookStore,
)
from convertly.state.records import Endpoint
from convertly.storage import build_storage
from convertly.storage.base import Storage, safe_name
from convertly.streams.analytics import PlaybackStore
from convertly.streams.store import StreamStore

# Seconds a process reuses a job's webhook endpoints: a job's files ask for them twice each.
# An account endpoint added or deleted meanwhile is seen by the job's events this much later.
WEBHOOK_TARGETS_TTL = 2.0


@dataclass(frozen=True)
class Services:
    """Everything the service functions need, built once per process (the stores and the
    finished-job channel from `convertly.state.build_state`)."""

    settings: Settings
    storage: Storage
    jobs: JobStore
    keys: ApiKeys
    files: FileStore
    registry: Registry
    secret: bytes
    folders: FolderStore
    webhooks: WebhookStore
    rates: RateLimitStore
    streams: StreamStore
    playback: PlaybackStore
    taxonomy: TaxonomyStore
    # Older signing secrets whose links still verify (CONVERTLY_SECRET_KEYS_OLD).
    old_secrets: tuple[bytes, ...] = ()
    # The media tools (POST /api/media/{tool}, tool jobs).
    tools: ToolRegistry = field(default_factory=default_tools, compare=False, repr=False)
    # Each thread's reusable working directory for job files (see file_workdir).
    workdirs: threading.local = field(default_factory=threading.local, compare=False,
                                      repr=False)
    # Wakes requests that wait for a job to finish (see convertly.jobevents).
    events: jobevents.JobEvents = field(default_factory=jobevents.JobEvents, compare=False,
                                        repr=False)
    # (tenant, job id) -> the webhook endpoints its started and progress events go to, as
    # read at most WEBHOOK_TARGETS_TTL seconds ago (`webhooks`).
    webhook_targets: Recent[tuple[str, str], list[Endpoint]] = field(
        default_factory=lambda: Recent(WEBHOOK_TARGETS_TTL), compare=False, repr=False)

    @property
    def scratch_root(self) -> Path:
        return self.settings.data_dir / "tmp"


def build_services(settings: Settings, *, storage: Storage | None = None) -> Services:
    scratch = settings.data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    state = build_state(settings)
    return Services(
        settings=settings,
        storage=storage if storage is not None else build_storage(settings),
        jobs=state.jobs,
        keys=ApiKeys(state.keys),
        files=state.files,
        registry=default_registry(() if settings.rar_command else (OutputFormat.RAR,)),
        secret=load_or_create_secret(settings.secret_key, settings.data_dir),
        old_secrets=old_secrets(settings.secret_keys_old),
        folders=state.folders,
        webhooks=state.webhooks,
        rates=state.rates,
        streams=state.streams,
        playback=state.playback,
        taxonomy=state.taxonomy,
        events=jobevents.JobEvents(state.finished),
    )


@contextmanager
def scratch_dir(svc: Services, label: str) -> Iterator[Path]:
    """A private working directory, removed afterwards whatever happens."""
    path = _new_dir(svc, label)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def file_workdir(svc: Services) -> Iterator[Path]:
    """A private, empty working directory for one job file. Each thread keeps its directory
    and empties it after use rather than making and removing one per file: two directory
    inodes per file cost ~0.7 ms of a small PNG's ~7 ms on this machine's disk. A directory
    that cannot be emptied is removed; the next file gets a new one."""
    path: Path | None = getattr(svc.workdirs, "path", None)
    svc.workdirs.path = None
    if path is None or not path.is_dir():
        path = _new_dir(svc, "file")
    try:
        yield path
    finally:
        if _emptied(path):
            svc.workdirs.path = path
        else:
            shutil.rmtree(path, ignore_errors=True)


def _new_dir(svc: Services, label: str) -> Path:
    """A new private directory under the scratch root; StorageFullError on a full disk."""
    with diskspace.room(f"the scratch directory {svc.scratch_root}"):
        svc.scratch_root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=svc.scratch_root))


def _emptied(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
    except OSError:
        return False
    return True


# --- storage keys -----------------------------------------------------------------------


def job_prefix(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/jobs/{job_id}"


def source_key(tenant: str, job_id: str, spec: FileSpec) -> str:
    return f"{job_prefix(tenant, job_id)}/sources/{spec.index}-{safe_name(spec.filename)}"
