"""Distributed mode for tests: a real redis-server, a real S3 service (SeaweedFS) and real
`convertly worker` (Celery) processes, all on loopback, sharing nothing but Redis and S3."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import redis

from convertly.settings import Settings
from tests.infra import DATABASES, RedisServer, SeaweedS3


class Worker:
    """One `convertly worker` process (Celery main process plus its pool children)."""

    def __init__(self, settings: Settings, data_dir: Path, *, queues: str,
                 concurrency: int) -> None:
        self.settings = settings.replace(data_dir=data_dir)
        self.data_dir = data_dir
        self.queues = queues
        self.concurrency = concurrency
        self.log_path = data_dir / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.settings.to_env()}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "convertly", "worker", "--queues", self.queues,
             "--concurrency", str(self.concurrency)],
            env=env, cwd=self.data_dir, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while b" ready." not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def children(self) -> list[int]:
        """Pids of the pool processes that run the tasks."""
        assert self.proc is not None
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True, check=False).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and children), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"


class Cluster:
    """The shared services of distributed mode; each app gets its own Redis database and
    bucket, so apps (and their workers) never see each other's work."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.redis = RedisServer(root / "redis")
        self.s3 = SeaweedS3(root / "s3")
        self._dbs = itertools.count(1)  # database 0 is the job-store contract tests'
        self._names = itertools.count(1)
        self.workers: list[Worker] = []

    def start(self) -> None:
        self.redis.start()
        self.s3.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.s3.close()
        self.redis.stop()

    def settings_for(self, settings: Settings) -> Settings:
        """`settings` turned distributed: its own Redis database and bucket."""
        db = next(self._dbs)
        if db >= DATABASES:
            raise RuntimeError("out of Redis databases for test apps")
        return settings.replace(
            broker_url=f"redis://{self.redis.endpoint}/{db}",
            s3_endpoint=self.s3.endpoint,
            s3_access_key=self.s3.access_key,
            s3_secret_key=self.s3.secret_key,
            s3_bucket=f"convertly-test-{db}",
            task_soft_time_limit=120,
            task_time_limit=150,
        )

    def start_worker(self, settings: Settings, *, queues: str = "image,media,archive",
                     concurrency: int = 2) -> Worker:
        worker = Worker(settings, self.root / f"worker-{next(self._names)}", queues=queues,
                        concurrency=concurrency)
        self.workers.append(worker)
        worker.start()
        return worker

    def flush(self, settings: Settings) -> None:
        client = redis.Redis.from_url(settings.broker_url)
        client.flushdb()
        client.close()
