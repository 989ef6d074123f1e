"""`convertly serve`, `worker` and `workers` against a Redis that refuses them, as an operator
meets one: a real redis-server with a password (none sent, a wrong one sent) and one in
protected mode. Each command stops at once with one line naming the setting, never the
password, where it used to die with a traceback or retry for ever."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_cli import _convertly, _env, _free_port
from tests.infra import RedisServer

PASSWORD = "s3cret-pass"
NEEDS = ("put the password Redis requires (its requirepass) in the URL, as "
         "redis://:PASSWORD@host:port/0")


class _RefusingRedis(RedisServer):
    """A redis-server with `password` (or none) bound to `host`, protected mode on."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1",
                 password: str = "") -> None:
        super().__init__(data_dir, appendonly=False)
        self.host = host
        self.password = password
        self.endpoint = f"{host}:{self.port}"

    def _argv(self) -> list[str]:
        argv = [*super()._argv(), "--bind", self.host]  # the last --bind wins
        return [*argv, "--requirepass", self.password] if self.password else argv

    def _ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            # Refusing is what this server is for: an answer is enough.
            return sock.recv(64).startswith((b"-NOAUTH", b"-DENIED", b"+PONG"))

    def url_with(self, password: str | None) -> str:
        auth = f":{password}@" if password is not None else ""
        return f"redis://{auth}{self.endpoint}/0"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_RefusingRedis]:
    with _RefusingRedis(tmp_path_factory.mktemp("redis-pw"), password=PASSWORD) as server:
        yield server


def _non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not on the loopback interface."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        address = ipaddress.ip_interface(line.split()[3]).ip
        if not address.is_loopback:
            return str(address)
    return None


def _run(data_dir: Path, command: str, **settings: str) -> subprocess.CompletedProcess[str]:
    argv = [_convertly(), command]
    if command == "serve":
        argv += ["--host", "127.0.0.1", "--port", str(_free_port())]
    return subprocess.run(argv, cwd=data_dir.parent, env={**_env(data_dir), **settings},
                          capture_output=True, text=True, timeout=60, check=False)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert PASSWORD not in result.stderr and "wrong-pass" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["serve", "worker", "workers"])
@pytest.mark.parametrize(("sent", "code", "why"), [
    (None, "NOAUTH", "it requires a password and none was sent"),
    ("wrong-pass", "WRONGPASS", "it refuses the password (or user) in the URL"),
])
def test_a_refused_password_stops_the_command_with_one_line(
        tmp_path: Path, locked: _RefusingRedis, command: str, sent: str | None, code: str,
        why: str) -> None:
    line = _one_line(_run(tmp_path / "data", command,
                          CONVERTLY_BROKER_URL=locked.url_with(sent)))
    assert line == (f"convertly: Redis at redis://{locked.endpoint}/0 (CONVERTLY_BROKER_URL) "
                    f"refuses this server: {why}: {NEEDS} ({code})")


def test_the_state_redis_refusing_is_named_by_its_own_setting(
        tmp_path: Path, locked: _RefusingRedis) -> None:
    with RedisServer(tmp_path / "broker", appendonly=False) as broker:
        line = _one_line(_run(tmp_path / "data", "serve", CONVERTLY_BROKER_URL=broker.url,
                              CONVERTLY_STATE_URL=locked.url_with("wrong-pass")))
    assert line.startswith(f"convertly: Redis at redis://{locked.endpoint}/0 "
                           "(CONVERTLY_STATE_URL) refuses this server: "), line
    assert line.endswith("(WRONGPASS)"), line


def test_the_right_password_gets_through(tmp_path: Path, locked: _RefusingRedis) -> None:
    result = _run(tmp_path / "data", "workers", CONVERTLY_BROKER_URL=locked.url_with(PASSWORD))
    assert result.returncode == 1, result.stderr  # no worker runs: the leases were read
    assert result.stderr.strip() == (
        f"convertly workers: no live worker found in Redis at redis://{locked.endpoint}/0.")


@pytest.mark.parametrize("command", ["serve", "worker", "workers"])
def test_protected_mode_stops_the_command_with_one_line(tmp_path: Path, command: str) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("protected mode refuses only clients from outside the loopback interface, "
                    "and this machine has no other IPv4 address to connect from")
    # No password and bound to a non-loopback address: a client connecting to that address
    # comes from it too, and Redis answers DENIED.
    with _RefusingRedis(tmp_path / "redis", host=address) as server:
        line = _one_line(_run(tmp_path / "data", command,
                              CONVERTLY_BROKER_URL=server.url_with(None)))
    assert line == (
        f"convertly: Redis at redis://{server.endpoint}/0 (CONVERTLY_BROKER_URL) refuses this "
        "server: it runs in protected mode (no password set, and this client is not on its "
        "loopback interface): give Redis a password (requirepass) and put it in the URL as "
        "redis://:PASSWORD@host:port/0 (DENIED)")
