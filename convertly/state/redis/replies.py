"""Replies to sync conversions in distributed mode: the Celery task that converts a file
sends its outcome to a Redis list the waiting API process blocks on. Transport, not state:
it shares the state's Redis and nothing else with the stores."""

from __future__ import annotations

import json
from typing import Any

import redis

from convertly.state.redis.client import connect, guard

REPLY_TTL = 3600
# A per-process cache: one connection pool per (process, URL), kept for the process's life.
# Keyed by pid because a forked pool child must not share its parent's sockets; a Celery
# task has no Services to carry the client, which is why it is cached here.
_reply_clients: dict[tuple[int, str], redis.Redis] = {}


def _reply_client(url: str) -> redis.Redis:
    """This process's client for sync replies (a forked worker process makes its own)."""
    import os

    client = _reply_clients.get((os.getpid(), url))
    if client is None:
        client = _reply_clients[(os.getpid(), url)] = connect(url)
    return client


def send_reply(url: str, key: str, payload: Any, *, final: bool = False) -> None:
    """Hand a sync conversion's outcome to the API process waiting on `key`; `final`: the
    outcome itself, after which a redelivery of the same conversion is not run again."""
    def run() -> None:
        with _reply_client(url).pipeline() as pipe:
            pipe.rpush(key, json.dumps(payload))
            pipe.expire(key, REPLY_TTL)
            if final:
                pipe.set(f"{key}:claim", REPLIED, ex=REPLY_TTL)
            pipe.execute()

    guard(run)


def wait_reply(client: Any, key: str, timeout: int) -> Any:
    """The payload sent to `key`, or None after `timeout` seconds."""
    found = guard(lambda: client.blpop([key], timeout=timeout))
    return None if found is None else json.loads(found[1])


# A sync conversion is claimed once, by whichever comes first: the worker that starts it
# ("started", and it tells the waiting API process so) or that API process giving up on
# the queue ("abandoned", and no worker converts it later). Its outcome sent, the claim
# becomes "replied": a redelivered task (its acknowledgement lost with the broker) skips it.
STARTED = "started"
ABANDONED = "abandoned"
REPLIED = "replied"


def claim_reply(client: Any, key: str, claim: str) -> str:
    """Claim the sync conversion answering to `key` as `claim`; the claim that holds (this
    one, or the one made first)."""
    claim_key = f"{key}:claim"

    def run() -> str:
        if client.set(claim_key, claim, nx=True, ex=REPLY_TTL):
            return claim
        held = client.get(claim_key)
        return held.decode() if isinstance(held, bytes) else str(held or claim)

    return guard(run)


def start_reply(url: str, key: str) -> str:
    """A worker starts the sync conversion answering to `key`: ABANDONED when the API
    process gave up on it, REPLIED when its outcome was sent before (do not convert either),
    else STARTED, and the API process learns it started. A redelivered task finds its own
    earlier claim and goes on."""
    claim = claim_reply(_reply_client(url), key, STARTED)
    if claim in (ABANDONED, REPLIED):
        return claim
    send_reply(url, key, [STARTED])
    return STARTED
