"""Rate limits and quotas through the API, in both modes, on an app with the default
settings (the session's shared apps raise them): a burst from one key, wrong keys from one
address, each tenant quota, and `convertly keys limits` changing what applies."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from starlette.testclient import TestClient

from convertly.models import FileResult, FileSpec, FileStatus, Job, JobStatus, JobType
from convertly.settings import Settings
from convertly.state.records import TenantLimits
from tests import images
from tests.api.support import AppEnv, deployed, post, running_app, wait_for_job

DEFAULTS = Settings()


@pytest.fixture(scope="module")
def default_env(mode: str, tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[AppEnv]:
    settings, cluster = deployed(
        mode, Settings(data_dir=tmp_path_factory.mktemp(f"limits-{mode}"), workers=1), request)
    with running_app(mode, settings, cluster) as env:
        yield env


def _check_ratelimit_headers(response: httpx2.Response, limit: int) -> None:
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert int(response.headers["RateLimit-Remaining"]) >= 0
    assert int(response.headers["RateLimit-Reset"]) >= 0
    assert response.headers["RateLimit-Policy"].startswith(f"{limit};w=")


def test_a_burst_of_600_requests_from_one_key_meets_429s(default_env: AppEnv) -> None:
    client, tenant = default_env.client, default_env.new_tenant("burst")
    burst, rate = DEFAULTS.rate_burst, DEFAULTS.rate_limit
    started = time.monotonic()
    responses = [client.get("/api/jobs", headers=tenant.headers) for _ in range(600)]
    elapsed = time.monotonic() - started
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200, 429}, statuses
    passed = statuses[200]
    # The bucket: its burst, then its rate (plus one for the rounding of time).
    assert burst <= passed <= burst + rate * elapsed + 1, (passed, elapsed)
    retry_after = Counter()
    for response in responses:
        _check_ratelimit_headers(response, burst)
        if response.status_code == 429:
            assert response.json()["code"] == "RATE_LIMITED"
            assert "25 a second" in response.json()["error"]
            assert response.headers["RateLimit-Remaining"] == "0"
            retry_after[int(response.headers["Retry-After"])] += 1
    assert min(retry_after) >= 1
    assert [int(r.headers["RateLimit-Remaining"]) for r in responses[:3]] == [
        burst - 1, burst - 2, burst - 3]
    # Another key of another tenant has a bucket of its own.
    other = default_env.new_tenant("calm")
    assert client.get("/api/jobs", headers=other.headers).status_code == 200
    print(f"\n{default_env.mode}: {passed} of 600 passed in {elapsed:.2f} s "
          f"({600 / elapsed:.0f} requests/s); Retry-After values {dict(retry_after)}")


def test_wrong_keys_throttle_their_address_only(default_env: AppEnv) -> None:
    tenant = default_env.new_tenant("victim")
    attacker = TestClient(default_env.app, client=("203.0.113.7", 40000))
    wrong = {"Authorization": "Bearer cvly_" + "x" * 43}
    limit = DEFAULTS.auth_failure_limit
    answers = [attacker.get("/api/jobs", headers=wrong) for _ in range(limit)]
    assert {r.status_code for r in answers} == {401}
    throttled = attacker.get("/api/jobs", headers=wrong)
    assert throttled.status_code == 429, throttled.text
    assert throttled.json()["code"] == "AUTH_THROTTLED"
    # 20 every 60 s: one more every 3 s.
    assert 1 <= int(throttled.headers["Retry-After"]) <= 3
    _check_ratelimit_headers(throttled, limit)
    # From that address even a valid key waits (a guess that is right learns nothing) ...
    assert attacker.get("/api/jobs", headers=tenant.headers).status_code == 429
    # ... but the same key from another address is served.
    assert default_env.client.get("/api/jobs", headers=tenant.headers).status_code == 200
    # Requests with no key at all guess nothing: they are not counted.
    keyless = TestClient(default_env.app, client=("203.0.113.8", 40000))
    assert {keyless.get("/api/jobs").status_code for _ in range(limit + 5)} == {401}


def _pending_job(tenant: str, files: int) -> Job:
    """A job that stays pending: stored, never queued."""
    specs = tuple(FileSpec(index=i, filename=f"{i}.png") for i in range(files))
    return Job(id=f"held-{time.monotonic_ns()}", tenant=tenant, job_type=JobType.CONVERT,
               status=JobStatus.PENDING, specs=specs,
               results=tuple(FileResult(index=s.index, filename=s.filename,
                                        status=FileStatus.PENDING) for s in specs),
               created_at=time.time())


def test_tenant_job_quotas(default_env: AppEnv) -> None:
    client, svc = default_env.client, default_env.services
    tenant = default_env.new_tenant("quota")
    held, _ = svc.jobs.create(_pending_job(tenant.tenant, 2), None, 60)
    picture = ("a.png", images.png(32, 32))

    svc.keys.set_limits(tenant.tenant, TenantLimits(concurrent_jobs=1))
    refused = post(client, "/api/jobs", tenant, [picture], format="webp")
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "CONCURRENT_JOBS_LIMIT"
    assert "concurrent jobs: 1" in refused.json()["error"]
    assert refused.headers["Retry-After"] == "5"
    assert refused.headers["RateLimit-Limit"] == "1"
    assert refused.headers["RateLimit-Remaining"] == "0"

    svc.keys.set_limits(tenant.tenant, TenantLimits(concurrent_jobs=0, queued_files=3))
    refused = post(client, "/api/jobs", tenant, [picture, picture], format="webp")
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "QUEUED_FILES_LIMIT"
    assert "queued files: 3" in refused.json()["error"]
    assert int(refused.headers["Retry-After"]) >= 1
    one = post(client, "/api/jobs", tenant, [picture], format="webp")
    assert one.status_code == 200, one.text
    assert wait_for_job(client, tenant, one.json()["jobId"])["status"] == "completed"

    # Cancelling the held job frees its files at once: nothing is counted apart.
    assert client.delete(f"/api/jobs/{held.id}", headers=tenant.headers).status_code == 200
    three = post(client, "/api/jobs", tenant, [picture] * 3, format="webp")
    assert three.status_code == 200, three.text
    assert wait_for_job(client, tenant, three.json()["jobId"])["status"] == "completed"


def test_tenant_storage_limit(default_env: AppEnv) -> None:
    client, svc = default_env.client, default_env.services
    tenant = default_env.new_tenant("storage")
    data = images.png(64, 64)
    limit = len(data) * 3 // 2
    svc.keys.set_limits(tenant.tenant, TenantLimits(stored_bytes=limit))
    first = client.post("/api/files", headers=tenant.headers, files={"file": ("a.png", data)})
    assert first.status_code == 201, first.text
    refused = client.post("/api/files", headers=tenant.headers, files={"file": ("b.png", data)})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "STORAGE_LIMIT"
    assert f"storage limit of {limit} bytes" in refused.json()["error"]
    direct = client.post("/api/uploads", headers=tenant.headers,
                         json={"filename": "c.png", "contentType": "image/png",
                               "sizeBytes": len(data)})
    assert direct.status_code == 403 and direct.json()["code"] == "STORAGE_LIMIT"
    saved = post(client, "/api/convert", tenant, [("c.png", data)], format="webp",
                 saveToStorage=True)
    assert saved.status_code == 403 and saved.json()["code"] == "STORAGE_LIMIT"
    unsaved = post(client, "/api/convert", tenant, [("c.png", data)], format="webp")
    assert unsaved.status_code == 200, unsaved.text
    assert svc.files.stored_bytes(tenant.tenant) == len(data)
    # A deleted file frees its bytes at once.
    file_id = first.json()["file"]["id"]
    assert client.delete(f"/api/files/{file_id}", headers=tenant.headers).status_code == 200
    again = client.post("/api/files", headers=tenant.headers, files={"file": ("b.png", data)})
    assert again.status_code == 201, again.text
    # At the limit, no new job starts (its outputs would count).
    svc.keys.set_limits(tenant.tenant, TenantLimits(stored_bytes=len(data)))
    job = post(client, "/api/jobs", tenant, [("a.png", data)], format="webp")
    assert job.status_code == 403 and job.json()["code"] == "STORAGE_LIMIT"


def test_keys_limits_command_sets_a_limit_that_applies(default_env: AppEnv,
                                                       tmp_path: Path) -> None:
    client, tenant = default_env.client, default_env.new_tenant("cli")
    env = {k: v for k, v in default_env.settings.to_env().items() if v}
    command = [str(Path(sys.executable).parent / "convertly"), "keys", "limits"]
    done = subprocess.run([*command, tenant.prefix, "--rate", "0.5", "--burst", "2"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Limits of tenant {tenant.tenant}" in done.stdout
    assert "rate" in done.stdout and "(own)" in done.stdout
    answers = [client.get("/api/jobs", headers=tenant.headers) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[2].headers["RateLimit-Limit"] == "2"
    assert int(answers[2].headers["Retry-After"]) == 2  # one request every 2 s
    done = subprocess.run([*command, tenant.tenant, "--reset"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "CONVERTLY_RATE_LIMIT" in done.stdout
    assert client.get("/api/jobs", headers=tenant.headers).status_code == 200
    wrong = subprocess.run([*command, "tn_nobody", "--rate", "1"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "tn_nobody" in wrong.stderr
