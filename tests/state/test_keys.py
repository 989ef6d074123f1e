"""The key store contract, on both engines, and the API key domain (`convertly.auth`) over
each of them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from convertly.auth import KEY_PREFIX, ApiKeys
from convertly.errors import AuthenticationError, NotFoundError
from convertly.state.base import KeyStore
from convertly.state.records import ApiKey
from convertly.state.redis.keys import RedisKeyStore
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.keys import SqliteKeyStore
from tests.state.conftest import ENGINES


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> KeyStore:
    if request.param == "sqlite":
        return SqliteKeyStore(Database(tmp_path / "keys.db"))
    return RedisKeyStore(request.getfixturevalue("redis_client"))


def key(prefix: str, created: float, tenant: str = "t1") -> ApiKey:
    return ApiKey(prefix, f"key {prefix}", tenant, created, None, None)


def test_records_are_found_by_prefix_with_their_hash(store: KeyStore) -> None:
    store.insert(key("cvly_bbbb", 2.0), "hash-b")
    store.insert(key("cvly_aaaa", 1.0, tenant="t2"), "hash-a")
    assert store.by_prefix("cvly_bbbb") == (key("cvly_bbbb", 2.0), "hash-b")
    assert store.by_prefix("cvly_aaaa") == (key("cvly_aaaa", 1.0, tenant="t2"), "hash-a")
    assert store.by_prefix("cvly_cccc") is None
    assert store.all() == [key("cvly_aaaa", 1.0, tenant="t2"), key("cvly_bbbb", 2.0)]


def test_update_keeps_the_hash(store: KeyStore) -> None:
    store.insert(key("cvly_aaaa", 1.0), "hash-a")
    used = replace(key("cvly_aaaa", 1.0), last_used_at=5.0, revoked_at=6.0)
    store.update(used)
    assert store.by_prefix("cvly_aaaa") == (used, "hash-a")
    assert store.all() == [used]


def test_keys_authenticate_until_revoked(store: KeyStore) -> None:
    keys = ApiKeys(store)
    secret, record = keys.create("first")
    assert secret.startswith(KEY_PREFIX) and secret.startswith(record.prefix)
    mine, _ = keys.create("second", tenant=record.tenant)
    found = keys.authenticate(secret)
    assert (found.prefix, found.tenant) == (record.prefix, record.tenant)
    assert found.last_used_at is not None
    assert keys.active_count() == 2
    with pytest.raises(AuthenticationError):
        keys.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    keys.revoke(record.prefix)
    with pytest.raises(AuthenticationError):
        keys.authenticate(secret)
    with pytest.raises(NotFoundError):
        keys.revoke(record.prefix)
    assert keys.authenticate(mine).tenant == record.tenant
    assert keys.active_count() == 1
