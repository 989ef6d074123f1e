"""Durable state: what the API processes and the workers share about jobs, stored files,
folders, library taxonomy terms, API keys and webhooks, on one of two engines.

    base.py      every state Protocol (`<Record>Store`), with its contract
    records.py   the records they carry (jobs are in `convertly.models`)
    gcra.py      the rate-limit step both engines run; inprocess.py keeps its buckets in
                 this process's memory (the embedded engine's RateLimitStore)
    sqlite/      the embedded engine: one SQLite database (database.py holds the schema)
                 and one module per store
    redis/       the distributed engine: client helpers and the key layout (client.py), one
                 module per store, the finished-job channel (events.py), and the
                 sync-conversion replies the Celery side sends through the same Redis
                 (replies.py: transport, not state)

`build_state(settings)` is the one place that chooses the engine; `convertly.service` builds
the process's services from the `State` it returns. The domain on top of the stores lives
outside this package: `convertly.auth` (keys), `convertly.library` (files and folders),
`convertly.webhooks`, `convertly.jobevents`, `convertly.jobs` and `convertly.pipeline` (jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from convertly.state.base import (
    FileStore,
    FinishedChannel,
    FolderStore,
    JobStore,
    KeyStore,
    RateLimitStore,
    TaxonomyStore,
    WebhookStore,
)
from convertly.streams.analytics import PlaybackStore
from convertly.streams.store import StreamStore

if TYPE_CHECKING:
    from convertly.settings import Settings


@dataclass(frozen=True)
class State:
    """Every store of one engine. `finished` is None when one process hears every job
    finish by itself (embedded: the pool hands its finalisations back to the API process);
    `rates` lives in process memory then (embedded mode has one API process)."""

    jobs: JobStore
    files: FileStore
    folders: FolderStore
    keys: KeyStore
    webhooks: WebhookStore
    finished: FinishedChannel | None
    rates: RateLimitStore
    streams: StreamStore
    playback: PlaybackStore
    taxonomy: TaxonomyStore


def build_state(settings: Settings) -> State:
    """The state the settings select: Redis (CONVERTLY_STATE_URL, else the broker's) when a
    broker is set (distributed mode), else the SQLite database in the data directory. Sends
    nothing to Redis before the first use."""
    if settings.distributed:
        from convertly.state.redis.client import connect
        from convertly.state.redis.events import RedisFinishedChannel
        from convertly.state.redis.files import RedisFileStore
        from convertly.state.redis.folders import RedisFolderStore
        from convertly.state.redis.jobs import RedisJobStore
        from convertly.state.redis.keys import RedisKeyStore
        from convertly.state.redis.playback import RedisPlaybackStore
        from convertly.state.redis.rates import RedisRateLimitStore
        from convertly.state.redis.streams import RedisStreamStore
        from convertly.state.redis.taxonomy import RedisTaxonomyStore
        from convertly.state.redis.webhooks import RedisWebhookStore

        client = connect(settings.redis_state_url)
        return State(jobs=RedisJobStore(client), files=RedisFileStore(client),
                     folders=RedisFolderStore(client), keys=RedisKeyStore(client),
                     webhooks=RedisWebhookStore(client),
                     finished=RedisFinishedChannel(settings.redis_state_url),
                     rates=RedisRateLimitStore(client),
                     streams=RedisStreamStore(client),
                     playback=RedisPlaybackStore(client),
                     taxonomy=RedisTaxonomyStore(client))

    from convertly.state.inprocess import InProcessRateLimitStore
    from convertly.state.sqlite.database import DATABASE_NAME, Database
    from convertly.state.sqlite.files import SqliteFileStore
    from convertly.state.sqlite.folders import SqliteFolderStore
    from convertly.state.sqlite.jobs import SqliteJobStore
    from convertly.state.sqlite.keys import SqliteKeyStore
    from convertly.state.sqlite.playback import SqlitePlaybackStore
    from convertly.state.sqlite.streams import SqliteStreamStore
    from convertly.state.sqlite.taxonomy import SqliteTaxonomyStore
    from convertly.state.sqlite.webhooks import SqliteWebhookStore

    db = Database(settings.data_dir / DATABASE_NAME)
    return State(jobs=SqliteJobStore(db), files=SqliteFileStore(db),
                 folders=SqliteFolderStore(db), keys=SqliteKeyStore(db),
                 webhooks=SqliteWebhookStore(db), finished=None,
                 rates=InProcessRateLimitStore(), streams=SqliteStreamStore(db),
                 playback=SqlitePlaybackStore(db), taxonomy=SqliteTaxonomyStore(db))
