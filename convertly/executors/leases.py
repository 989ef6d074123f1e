"""Reading the worker leases: which Celery workers are live, and the queues they consume.

Every worker's main process keeps a lease in the broker's Redis (written by
`workers.leases`): `convertly:worker:<node name>`, a JSON record renewed every lease/6 seconds
and expiring after a lease, plus the node's name in the `convertly:workers` sorted set (scored
by its last beat), so that readers need no SCAN of the keyspace. The API's /healthz and
`convertly workers` read them here; the key names and the record's shape are declared once,
in this module, for both sides.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

WORKER_KEY = "convertly:worker:"
# Kombu's Redis transport keeps each delivered, unacknowledged message in UNACKED (tag ->
# [message, exchange, routing key]) and its delivery time in UNACKED_INDEX (its defaults,
# `unacked_key` and `unacked_index_key`).
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
# Node name -> time of its last beat; names are dropped a day after their last beat (the
# lease keys themselves say who is live).
WORKERS = "convertly:workers"


def beat_interval(lease: float) -> float:
    """Seconds between two beats of a worker whose lease lasts `lease` seconds."""
    return lease / 6


def connect(broker_url: str) -> Any:
    """A client of the broker's Redis, where the leases live. Short timeouts: a beat or a
    look at the leases fails fast when Redis is away rather than hanging."""
    return redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=3)


def live_workers(client: Any) -> dict[str, dict[str, Any]]:
    """Node name -> its lease record ("at": its last beat, "held": delivery tags, "queues":
    queue names), for every worker whose lease runs."""
    nodes = [n.decode() if isinstance(n, bytes) else str(n)
             for n in client.zrange(WORKERS, 0, -1)]
    if not nodes:
        return {}
    records = client.mget([WORKER_KEY + n for n in nodes])
    return {node: json.loads(raw) for node, raw in zip(nodes, records, strict=True)
            if raw is not None}


def workers_by_queue(client: Any, queues: Iterable[str]) -> dict[str, int]:
    """How many live workers consume each of `queues` (and any other queue they name)."""
    counts = dict.fromkeys(queues, 0)
    for record in live_workers(client).values():
        for queue in record.get("queues", []):
            counts[queue] = counts.get(queue, 0) + 1
    return counts
