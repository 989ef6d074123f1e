"""The webhook store contract, on both engines: SQLite (embedded) and Redis (distributed)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from convertly.state.base import WebhookStore
from convertly.state.records import (
    Delivery,
    DeliveryStatus,
    EmitState,
    Endpoint,
    Shares,
    new_id,
)
from convertly.state.redis.webhooks import P, RedisWebhookStore
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.webhooks import SqliteWebhookStore
from tests.state.conftest import ENGINES

TTL = 3600
NOW = 1_000_000.0
ANY = Shares(per_tenant=100, per_endpoint=100)


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> WebhookStore:
    if request.param == "sqlite":
        return SqliteWebhookStore(Database(tmp_path / "hooks.db"))
    return RedisWebhookStore(request.getfixturevalue("redis_client"))


def endpoint(tenant: str = "t1", job_id: str | None = None, **extra: object) -> Endpoint:
    return Endpoint(id=new_id("we"), tenant=tenant, url="https://example.com/h",
                    secret="whsec_x", events=None, base_url="http://api", created_at=NOW,
                    job_id=job_id, **extra)  # type: ignore[arg-type]


def delivery(ep: Endpoint, job_id: str, event_type: str = "conversion.progress",
             at: float = NOW) -> Delivery:
    return Delivery(id=new_id("wd"), tenant=ep.tenant, endpoint_id=ep.id, job_id=job_id,
                    event_id=new_id("evt"), event_type=event_type, url=ep.url,
                    snapshot='{"x":1}', max_attempts=3, next_attempt_at=at, created_at=at)


def finished(d: Delivery, status: DeliveryStatus = DeliveryStatus.SUCCEEDED,
             at: float = NOW) -> Delivery:
    return replace(d, status=status, attempts=d.attempts + 1, next_attempt_at=None,
                   last_attempt_at=at, finished_at=at, response_code=200)


def test_endpoints_belong_to_their_tenant(store: WebhookStore) -> None:
    mine, theirs, callback = endpoint("t1"), endpoint("t2"), endpoint("t1", job_id="j1")
    for ep in (mine, theirs, callback):
        store.add_endpoint(ep, TTL)
    assert store.endpoints("t1") == [mine]  # callbacks are not account endpoints
    assert {e.id for e in store.targets("t1", "j1")} == {mine.id, callback.id}
    assert store.targets("t1", "j2") == [mine]
    assert store.targets("t2", "j1") == [theirs]  # another tenant's job id: nothing of t1's
    assert store.endpoint(callback.id) == callback
    assert store.remove_endpoint(mine.id, "t2") is False
    assert store.remove_endpoint(callback.id, "t1") is False
    assert store.remove_endpoint(mine.id, "t1") is True
    assert store.endpoints("t1") == [] and store.endpoint(mine.id) is None


def test_emit_rules(store: WebhookStore) -> None:
    ep = endpoint()
    job = "job-1"
    assert store.emit(job, "progress", 10, NOW, 5.0, [delivery(ep, job)], TTL)
    assert not store.emit(job, "progress", 10, NOW + 10, 5.0, [], TTL)  # not forward
    assert not store.emit(job, "progress", 20, NOW + 1, 5.0, [], TTL)  # too soon
    assert store.emit(job, "progress", 20, NOW + 6, 5.0, [], TTL)
    assert store.emit(job, "started", 0, NOW, 5.0, [delivery(ep, job)], TTL)
    assert not store.emit(job, "started", 0, NOW, 5.0, [delivery(ep, job)], TTL)
    assert store.emit(job, "terminal", 100, NOW, 5.0, [delivery(ep, job)], TTL)
    assert not store.emit(job, "terminal", 100, NOW, 5.0, [delivery(ep, job)], TTL)
    assert not store.emit(job, "progress", 90, NOW + 60, 5.0, [delivery(ep, job)], TTL)
    assert store.emit_state(job) == EmitState(started=True, terminal=True, progress=20,
                                              progress_at=NOW + 6)
    assert store.deliveries("t1", job_id=job, limit=10, offset=0)[1] == 3  # refused: none


def test_a_stream_is_sent_in_order_and_claims_are_leased(store: WebhookStore) -> None:
    ep, other = endpoint(), endpoint()
    first, second = delivery(ep, "j"), delivery(ep, "j", at=NOW + 1)
    elsewhere = delivery(other, "j")
    store.emit("j", "started", 0, NOW, 0, [first, elsewhere], TTL)
    store.emit("j", "terminal", 0, NOW + 1, 0, [second], TTL)

    claimed = store.claim_due(NOW + 5, 10, lease=30, shares=ANY)
    assert {d.id for d in claimed} == {first.id, elsewhere.id}  # second waits for first
    assert store.claim_due(NOW + 5, 10, lease=30, shares=ANY) == []  # leased
    store.record_attempt(finished(next(d for d in claimed if d.id == elsewhere.id)))
    # A retry keeps the stream's head: the next one still waits.
    store.record_attempt(replace(first, attempts=1, next_attempt_at=NOW + 7,
                                 last_error="HTTP 500"))
    assert store.claim_due(NOW + 6, 10, lease=30, shares=ANY) == []
    [again] = store.claim_due(NOW + 7, 10, lease=30, shares=ANY)
    assert (again.id, again.attempts, again.last_error) == (first.id, 1, "HTTP 500")
    store.record_attempt(finished(again))
    [after] = store.claim_due(NOW + 8, 10, lease=30, shares=ANY)
    assert after.id == second.id
    # A lost claim (the sender died) comes back once its lease ran out.
    assert store.claim_due(NOW + 37, 10, lease=30, shares=ANY) == []
    [lost] = store.claim_due(NOW + 39, 10, lease=30, shares=ANY)
    assert lost.id == second.id


def test_the_log_pages_newest_first_per_tenant_and_job(store: WebhookStore) -> None:
    ep, stranger = endpoint("t1"), endpoint("t2")
    for i in range(5):
        assert store.emit(f"job-{i % 2}", "progress", i + 1, NOW + i, 0,
                          [delivery(ep, f"job-{i % 2}", at=NOW + i)], TTL)
    store.emit("job-x", "started", 0, NOW, 0, [delivery(stranger, "job-x")], TTL)
    page, total = store.deliveries("t1", job_id=None, limit=2, offset=1)
    assert total == 5 and [d.created_at for d in page] == [NOW + 3, NOW + 2]
    mine, total = store.deliveries("t1", job_id="job-0", limit=10, offset=0)
    assert total == 3 and {d.job_id for d in mine} == {"job-0"}
    assert store.deliveries("t2", job_id="job-0", limit=10, offset=0) == ([], 0)
    assert store.delivery(mine[0].id, "t2") is None
    assert store.delivery(mine[0].id, "t1") == mine[0]


def test_retry_only_finished_deliveries(store: WebhookStore) -> None:
    ep = endpoint()
    d = delivery(ep, "j")
    store.emit("j", "started", 0, NOW, 0, [d], TTL)
    assert store.retry(d.id, "t1", NOW) is None  # still pending
    [claimed] = store.claim_due(NOW, 10, 30, ANY)
    store.record_attempt(finished(claimed, DeliveryStatus.FAILED))
    assert store.claim_due(NOW + 100, 10, 30, ANY) == []
    assert store.retry(d.id, "t2", NOW) is None  # another tenant's
    again = store.retry(d.id, "t1", NOW + 100)
    assert again is not None
    assert (again.status, again.attempts, again.max_attempts) == (DeliveryStatus.PENDING, 1, 2)
    assert store.retry(d.id, "t1", NOW + 100) is None
    [claimed] = store.claim_due(NOW + 100, 10, 30, ANY)
    assert claimed.id == d.id and claimed.finished_at is None


def test_purge_forgets_old_finished_deliveries_only(store: WebhookStore) -> None:
    ep = endpoint()
    old, fresh, waiting = delivery(ep, "a"), delivery(ep, "b"), delivery(ep, "c")
    for d in (old, fresh, waiting):
        store.emit(d.job_id, "started", 0, NOW, 0, [d], TTL)
    claimed = {d.id: d for d in store.claim_due(NOW, 10, 30, ANY)}
    store.record_attempt(finished(claimed[old.id], at=NOW))
    store.record_attempt(finished(claimed[fresh.id], at=NOW + 500))
    assert store.purge(NOW + 100) == 1
    ids = {d.id for d in store.deliveries("t1", job_id=None, limit=10, offset=0)[0]}
    assert ids == {fresh.id, waiting.id}


def test_emit_state_after_is_what_both_engines_follow() -> None:
    state = EmitState()
    assert state.after("progress", 5, time.time(), 10.0) is not None
    assert EmitState(terminal=True).after("started", 0, 0, 0) is None


def test_a_claim_keeps_to_the_shares_and_tenants_take_turns(store: WebhookStore) -> None:
    """Tenant x has 12 streams due (4 endpoints, 3 jobs each), all due before y's one: y's
    still comes in the first claim, and x never goes past its shares."""
    xs = [endpoint("x") for _ in range(4)]
    for i, ep in enumerate(xs):
        for job in range(3):
            store.emit(f"x-{i}-{job}", "started", 0, NOW, 0,
                       [delivery(ep, f"x-{i}-{job}", at=NOW + job)], TTL)
    y = endpoint("y")
    store.emit("y-job", "started", 0, NOW + 5, 0, [delivery(y, "y-job", at=NOW + 5)], TTL)

    shares = Shares(per_tenant=2, per_endpoint=1)
    claimed = store.claim_due(NOW + 10, 3, 30, shares)
    assert sorted(d.tenant for d in claimed) == ["x", "x", "y"]
    assert len({d.endpoint_id for d in claimed}) == 3  # one per endpoint
    # x is at its share: nothing more of x, however much of it is due.
    busy = Shares(per_tenant=2, per_endpoint=1, tenants={"x": 2, "y": 1},
                  endpoints={d.endpoint_id: 1 for d in claimed})
    assert store.claim_due(NOW + 10, 10, 30, busy) == []
    # One x delivery in flight: one more, to an endpoint not at its share.
    one = Shares(per_tenant=2, per_endpoint=1, tenants={"x": 1},
                 endpoints={xs[0].id: 1, xs[1].id: 1})
    [more] = store.claim_due(NOW + 10, 10, 30, one)
    assert more.tenant == "x" and more.endpoint_id in {xs[2].id, xs[3].id}
    # Under no shares to speak of, everything that heads its stream is due.
    assert len(store.claim_due(NOW + 10, 100, 30, ANY)) == 12 - 3


def test_stream_heads_due_in_the_single_zset_of_earlier_versions_are_still_sent(
        redis_client: redis.Redis) -> None:
    """Before the per-tenant zsets, due stream heads were in `cv:wh:due`: an upgrade with
    deliveries pending moves them over on the first claim, and sends them."""
    store = RedisWebhookStore(redis_client)
    ep, other = endpoint("t1"), endpoint("t2")
    pending = [delivery(ep, "a"), delivery(other, "b", at=NOW + 1)]
    store.emit("a", "started", 0, NOW, 0, pending[:1], TTL)
    store.emit("b", "started", 0, NOW + 1, 0, pending[1:], TTL)
    # As an earlier version left them: one zset for every tenant.
    for d in pending:
        redis_client.zrem(f"{P}due:{d.tenant}", d.id)
        redis_client.zadd(f"{P}due", {d.id: d.next_attempt_at or NOW})
    redis_client.delete(f"{P}duet")
    claimed = store.claim_due(NOW + 5, 10, 30, ANY)
    assert {d.id for d in claimed} == {d.id for d in pending}
    assert not redis_client.exists(f"{P}due")
    store.record_attempt(finished(claimed[0]))
    assert store.claim_due(NOW + 100, 10, 30, ANY) == [claimed[1]]  # lease over, still due
