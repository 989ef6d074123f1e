"""The records the state stores carry (jobs, `Job` and its parts, are in `convertly.models`):
frozen dataclasses, the same on both engines."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiKey:
    """An API key's record; the key itself is never stored, only its hash (`convertly.auth`).
    `prefix` is the key's public beginning, by which it is looked up."""

    prefix: str
    name: str
    tenant: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
