"""The hostile corpus against a real server, in both modes: every answer is a 4xx in
Convertly's error shape or a clean per-file result, never a 5xx, a hang or a crashed worker;
memory stays bounded in every process; the service keeps serving afterwards."""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from tests import images
from tests.hostile.conftest import MIB, HostileEnv
from tests.hostile.corpus import Case
from tests.hostile.harness import (
    BROKEN_CODES,
    Outcome,
    collect_job,
    dump,
    http_client,
    run_request,
    submit_batch,
)

CATEGORIES = ["truncated", "pixel-flood", "duration-pages", "bomb", "traversal", "sniffing",
              "outside-refs", "request", "size-limits"]
# Peak resident memory allowed during the corpus (measured: API 70-90 MiB, workers 330-450
# MiB, tools 150-180 MiB). The API streams uploads to disk, so it stays near its idle size; a
# worker holds a few copies of one image under CONVERTLY_MAX_PIXELS (25 MP here, 100 MiB as
# RGBA), or py7zr's decompression chunk (up to 128 MB, whatever the archive claims), plus its
# libraries: far under CONVERTLY_TASK_MAX_MEMORY (1 GiB here).
API_MAX_RSS = 200 * MIB
WORKER_MAX_RSS = 640 * MIB
TOOL_MAX_RSS = 400 * MIB
BATCH = 20  # files per job: the server's CONVERTLY_MAX_FILES


def _problems(outcome: Outcome) -> list[str]:
    problems = list(outcome.problems)
    if outcome.code in BROKEN_CODES or outcome.code == "TIMEOUT":
        problems.append(f"outcome {outcome.code}")
    expect = outcome.case.expect
    if (expect is not None and outcome.code not in expect and outcome.code != "accepted"
            and not problems):
        problems.append(f"got {outcome.code}, expected one of {sorted(expect)}")
    return [f"{outcome.case.label} [{outcome.where}]: {p}" for p in problems]


def _sanity_check(env: HostileEnv) -> None:
    """A normal conversion still works and gives a real image."""
    with http_client() as client:
        response = client.post(
            f"{env.server.base}/api/convert", headers=env.server.headers,
            files=[("files", ("ok.png", images.png(64, 48), "image/png"))],
            data={"format": "jpg"})
    assert response.status_code == 200, response.text
    url = response.json()["files"][0]["downloadUrl"]
    import base64

    picture = Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2])))
    assert (picture.format, picture.size) == ("JPEG", (64, 48))


def run_category(env: HostileEnv, cases: list[Case]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    jobs: list[tuple[str, list[Case]]] = []
    with http_client() as client:
        batch = [c for c in cases if c.batch]
        for start in range(0, len(batch), BATCH):
            chunk = batch[start : start + BATCH]
            jobs.append((submit_batch(client, env.server, chunk), chunk))
        # File cases reach /api/jobs in the batches above.
        requests = [(case, path) for case in cases for path in case.paths
                    if not (case.batch and path == "/api/jobs")]
        with ThreadPoolExecutor(4) as pool:
            outcomes += pool.map(lambda item: run_request(client, env.server, *item, jobs),
                                 requests)
        for job_id, job_cases in jobs:
            outcomes += collect_job(client, env.server, job_id, job_cases)
    return outcomes


@pytest.mark.parametrize("category", CATEGORIES)
def test_corpus_category(hostile: HostileEnv, category: str) -> None:
    cases = [c for c in hostile.corpus.cases if c.category == category]
    assert cases
    hostile.sampler.phase = category
    outcomes = run_category(hostile, cases)
    hostile.report.outcomes[category] = outcomes
    problems = [p for outcome in outcomes for p in _problems(outcome)]
    forbidden = {name for case in cases for name in case.forbidden}
    for name in forbidden:
        for root in (Path("/tmp"), hostile.server.settings.data_dir.parent):
            found = [str(p) for p in root.rglob(name)] if root != Path("/tmp") else (
                [str(root / name)] if (root / name).exists() else [])
            problems += [f"an extraction wrote {path}" for path in found]
    assert not problems, "\n".join(problems)
    _sanity_check(hostile)


def test_no_outside_access_and_bounded_memory(hostile: HostileEnv,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """After the corpus: the loopback listener saw nothing, no worker crashed, and the
    peak memory of every process kind stayed under its bound."""
    sampler, report = hostile.sampler, hostile.report
    table = report.table(sampler)
    dump(report, sampler, hostile.server.settings.data_dir / "hostile-report.json")
    with capsys.disabled():
        print(f"\n{table}\n(corpus of {len(hostile.corpus.cases)} cases built in "
              f"{hostile.corpus.seconds:.1f} s; worker processes seen: "
              f"{len(sampler.worker_pids)})")
    assert hostile.corpus.listener.connections == [], hostile.corpus.listener.connections
    logs = hostile.server.logs()
    for sign in ("process died", "WorkerLostError", "Traceback", "unhandled error"):
        assert sign not in logs, f"{sign!r} in the logs:\n{_around(logs, sign)}"
    # Two worker processes in either mode (the pool's, or the Celery worker's): none was
    # replaced, so none crashed or was killed (planned recycling is off for the corpus).
    assert len(sampler.worker_pids) <= 2, f"worker processes seen: {sampler.worker_pids}"
    overall = sampler.overall()
    assert overall["api"] < API_MAX_RSS, table
    assert overall.get("worker", 0) < WORKER_MAX_RSS, table
    assert overall.get("tools", 0) < TOOL_MAX_RSS, table
    assert not os.path.exists(f"/tmp/{hostile.corpus.marker}")


def _around(text: str, needle: str, width: int = 1500) -> str:
    at = text.find(needle)
    return text[max(0, at - width) : at + width]
