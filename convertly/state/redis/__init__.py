"""The distributed engine: every store on one Redis (`client.py` draws the key layout), shared
by every API and worker process on every host.

The Celery executor and tasks talk to this Redis themselves (sync-conversion replies, counts
of deliveries whose process died); they use the names exported here.
"""

from convertly.state.redis.client import P, connect, guard
from convertly.state.redis.replies import (
    ABANDONED,
    REPLIED,
    STARTED,
    claim_reply,
    send_reply,
    start_reply,
    wait_reply,
)

__all__ = ["ABANDONED", "REPLIED", "STARTED", "P", "claim_reply", "connect", "guard",
           "send_reply", "start_reply", "wait_reply"]
