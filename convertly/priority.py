"""The order waiting work is taken in, the same in both modes.

Work waits at one of five levels, and a free worker process takes the oldest work of the
most urgent level:

- URGENT: a sync conversion (its client holds the request open) and a job's finalisation
  (the job is done but for it);
- HIGH: all files of a job sent with `priority=high`;
- HEAD: the first HEAD_FILES files of every other job;
- BULK: the other files of a larger job;
- LOW: all files of a job sent with `priority=low`.

So a sync conversion waits for one file per worker process at most, not for the batches
queued before it, and a job of a few files (or the start of any job) goes ahead of the tail
of a large job queued earlier. The levels are the Redis transport's priority steps, where
0 is taken first.
"""

from __future__ import annotations

URGENT, HIGH, HEAD, BULK, LOW = 0, 2, 4, 6, 8
LEVELS = (URGENT, HIGH, HEAD, BULK, LOW)
LEVEL_NAMES = {URGENT: "urgent", HIGH: "high", HEAD: "head", BULK: "bulk", LOW: "low"}
HEAD_FILES = 10
DEFAULT = "normal"


def file_level(index: int, priority: str = DEFAULT) -> int:
    """The level of file `index` of a job sent with `priority`."""
    if priority == "low":
        return LOW
    if priority == "high":
        return HIGH
    return HEAD if index < HEAD_FILES else BULK
