"""Settings are strict: typed values (ports, URLs, sizes, durations, booleans), `.env` read by
the usual rules, misspelled names warned about, and every bad value refused by `convertly` in
one line that names the setting, with exit status 2 and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from convertly.settings import (
    ByteSize,
    Duration,
    Settings,
    SettingsError,
    _path,
    _secret,
    _str,
    shown,
)

ROOT = Path(__file__).resolve().parents[1]
CONVERTLY = [sys.executable, "-c", "import sys; from convertly.cli import main; sys.exit(main())"]


def run_convertly(args: list[str], env: dict[str, str],
                  cwd: Path) -> subprocess.CompletedProcess[str]:
    """`convertly ARGS` in a clean environment (no CONVERTLY_* of the caller's), in `cwd`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVERTLY_")}
    base["PYTHONPATH"] = str(ROOT)
    base["CONVERTLY_DATA_DIR"] = str(cwd / "data")
    return subprocess.run([*CONVERTLY, *args], env={**base, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- each error a real `convertly serve` run: one line, the setting, its value, exit 2 ---------

@pytest.mark.parametrize(("env", "args", "expected"), [
    ({"CONVERTLY_PORT": "70000"}, [],
     "CONVERTLY_PORT: expected a port from 1 to 65535, got '70000'"),
    ({}, ["--port", "70000"], "--port: expected a port from 1 to 65535, got '70000'"),
    ({}, ["--port", "0"], "--port: expected a port from 1 to 65535, got '0'"),
    ({"CONVERTLY_PUBLIC_URL": "notaurl"}, [],
     "CONVERTLY_PUBLIC_URL: expected an http:// or https:// URL with a host "
     "(e.g. https://convert.example.com), got 'notaurl'"),
    ({"CONVERTLY_BROKER_URL": "localhost:6379"}, [],
     "CONVERTLY_BROKER_URL: expected a Redis URL: redis://[:password@]host[:port][/db] or "
     "rediss://..., got 'localhost:6379'"),
    # The password never shows.
    ({"CONVERTLY_BROKER_URL": "redis://:hunter2@redis:63x9/0"}, [],
     "CONVERTLY_BROKER_URL: expected a Redis URL: redis://[:password@]host[:port][/db] or "
     "rediss://..., got 'redis://:****@redis:63x9/0'"),
    ({"CONVERTLY_BROKER_URL": "redis://redis:6379/0", "CONVERTLY_STATE_URL": "redis:/nohost"},
     [], "CONVERTLY_STATE_URL: expected a Redis URL: redis://[:password@]host[:port][/db] or "
     "rediss://... or unix:///path/to/redis.sock, got 'redis:/nohost'"),
    # Well formed, but with a query redis-py cannot use: found when start-up tries it.
    ({"CONVERTLY_BROKER_URL": "redis://127.0.0.1:1/0?socket_timeout=soon"}, [],
     "CONVERTLY_BROKER_URL: expected a URL Redis can use (Invalid value for 'socket_timeout' "
     "in connection URL), got 'redis://127.0.0.1:1/0?socket_timeout=soon'"),
    ({"CONVERTLY_BROKER_URL": "redis://127.0.0.1:1/0",
      "CONVERTLY_STATE_URL": "redis://:hunter2@127.0.0.1:1/3?colour=blue"}, [],
     "CONVERTLY_STATE_URL: expected a URL Redis can use (an option in its query Redis does "
     "not know), got 'redis://:****@127.0.0.1:1/3?colour=blue'"),
    ({"CONVERTLY_MAX_FILE_BYTES": "lots"}, [],
     "CONVERTLY_MAX_FILE_BYTES: expected a size from 1: a whole number of bytes, or a number "
     "with a unit (10MB, 512KiB, 50GiB), got 'lots'"),
    ({"CONVERTLY_JOB_RETENTION": "a day"}, [],
     "CONVERTLY_JOB_RETENTION: expected a duration from 0: whole seconds, or with units "
     "(30s, 15m, 24h, 7d, 1h30m), got 'a day'"),
    ({"CONVERTLY_S3_SECURE": "maybe"}, [],
     "CONVERTLY_S3_SECURE: expected true or false (or 1/0, yes/no, on/off), got 'maybe'"),
])
def test_a_bad_value_stops_serve_with_one_line(tmp_path: Path, env: dict[str, str],
                                               args: list[str], expected: str) -> None:
    done = run_convertly(["serve", *args], env, tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.removeprefix("convertly: ").removeprefix("invalid setting: ") == expected
    assert "hunter2" not in done.stderr


def test_a_data_dir_that_cannot_be_made_stops_serve_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    data = tmp_path / "a-file" / "data"
    done = run_convertly(["serve"], {"CONVERTLY_DATA_DIR": str(data)}, tmp_path)
    assert done.returncode == 2
    assert one_line(done.stderr) == (
        "convertly: invalid setting: CONVERTLY_DATA_DIR: expected a directory this user can "
        f"create and write to, got '{data}' (Not a directory)")
    # The same for the commands that open the job database.
    done = run_convertly(["keys", "list"], {"CONVERTLY_DATA_DIR": str(data)}, tmp_path)
    assert done.returncode == 2
    assert "CONVERTLY_DATA_DIR" in one_line(done.stderr)


def test_a_data_dir_that_cannot_be_written_stops_serve_with_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: a read-only file system then
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(locked)],
                       check=True)
        reason = "Read-only file system"
    else:
        locked.chmod(0o555)
        reason = "Permission denied"
    try:
        done = run_convertly(["serve"], {"CONVERTLY_DATA_DIR": str(locked)}, tmp_path)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(locked)], check=True)
    assert done.returncode == 2
    assert one_line(done.stderr) == (
        "convertly: invalid setting: CONVERTLY_DATA_DIR: expected a directory this user can "
        f"create and write to, got '{locked}' ({reason})")


# -- .env: the usual rules ---------------------------------------------------------------------

def test_env_file_inline_comments_quotes_and_export(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\n"
        "CONVERTLY_PUBLIC_URL=https://convert.example.com # the load balancer\n"
        "export CONVERTLY_PORT=8123\n"
        "CONVERTLY_SECRET_KEY='with # inside'\n"
        'CONVERTLY_S3_REGION="eu\\twest"\n'
        "CONVERTLY_MAX_FILE_BYTES=50GiB   # per file\n"
        "CONVERTLY_JOB_RETENTION = 24h\n"
    )
    settings = Settings.from_env({}, env_file=env_file)
    assert settings.public_url == "https://convert.example.com"
    assert settings.port == 8123
    assert settings.secret_key == "with # inside"
    assert settings.s3_region == "eu\twest"
    assert settings.max_file_bytes == 50 * 2**30
    assert settings.job_retention == 86_400


def test_the_environment_wins_over_env_file_and_empty_means_default(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CONVERTLY_PORT=8123\nCONVERTLY_HOST=0.0.0.0\n")
    settings = Settings.from_env({"CONVERTLY_PORT": "9000", "CONVERTLY_HOST": ""},
                                 env_file=env_file)
    assert (settings.port, settings.host) == (9000, "127.0.0.1")


def test_a_commented_public_url_makes_clean_links(tmp_path: Path) -> None:
    """The operator's case end to end: `convertly serve` reads `.env` from its directory."""
    (tmp_path / ".env").write_text("CONVERTLY_PUBLIC_URL=https://x.example.com # note\n"
                                   "CONVERTLY_PORT=70000\n")
    done = run_convertly(["serve"], {}, tmp_path)
    # The comment did not reach the URL (it was accepted); the port was checked next.
    assert one_line(done.stderr).endswith("CONVERTLY_PORT: expected a port from 1 to 65535, "
                                          "got '70000'")
    (tmp_path / ".env").write_text("CONVERTLY_PUBLIC_URL=https://x.example.com # note\n")
    settings = Settings.from_env({}, env_file=tmp_path / ".env")
    assert settings.public_url == "https://x.example.com"


# -- unknown names -----------------------------------------------------------------------------

def test_unknown_names_are_warned_about_with_the_closest_setting(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CONVERTLY_MAX_FILE_BYTE=10MB\nCONVERTLY_NOTHING_LIKE=1\n")
    done = run_convertly(["serve", "--port", "70000"], {"CONVERTLY_PUBLC_URL": "https://x"},
                         tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "CONVERTLY_PUBLC_URL (in the environment) is not a setting and does nothing; did you "
        "mean CONVERTLY_PUBLIC_URL?",
        "CONVERTLY_MAX_FILE_BYTE (in .env) is not a setting and does nothing; did you mean "
        "CONVERTLY_MAX_FILE_BYTES?",
        "CONVERTLY_NOTHING_LIKE (in .env) is not a setting and does nothing; see .env.example "
        "for the settings",
        "convertly: --port: expected a port from 1 to 65535, got '70000'",
    ]


# -- the value types ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "ok"), [
    ("1", True), ("65535", True), ("8000 ", True),
    ("0", False), ("65536", False), ("70000", False), ("-1", False), ("80.0", False),
    ("http", False),
])
def test_ports_run_from_1_to_65535(raw: str, ok: bool) -> None:
    if ok:
        assert Settings.from_env({"CONVERTLY_PORT": raw}, env_file=None).port == int(raw)
    else:
        with pytest.raises(SettingsError, match=r"^CONVERTLY_PORT: expected a port from 1 to "
                                                r"65535, got "):
            Settings.from_env({"CONVERTLY_PORT": raw}, env_file=None)


@pytest.mark.parametrize(("raw", "value"), [
    ("1048576", 1048576), ("1_000", 1000), ("10MB", 10_000_000), ("10 mb", 10_000_000),
    ("512KiB", 512 * 1024), ("50GiB", 50 * 2**30), ("1.5GiB", 3 * 2**29), ("2tb", 2 * 10**12),
    ("100B", 100),
    ("1.5", None), ("10XB", None), ("-5", None), ("GiB", None), ("0", None), ("ten", None),
])
def test_byte_sizes(raw: str, value: int | None) -> None:
    parse = ByteSize()
    if value is None:
        with pytest.raises(ValueError, match=r"^expected a size from 1"):
            parse(raw)
    else:
        assert parse(raw) == value
    assert ByteSize(unit=1024)("4") == 4 and ByteSize(unit=1024)("1GiB") == 2**20


@pytest.mark.parametrize(("raw", "value"), [
    ("30", 30.0), ("2.5", 2.5), ("30s", 30.0), ("15m", 900.0), ("24h", 86_400.0),
    ("7d", 604_800.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1m 30s", 90.0),
    ("0", None), ("-3", None), ("3x", None), ("h", None), ("", None), ("30 seconds", None),
])
def test_durations(raw: str, value: float | None) -> None:
    parse = Duration()
    if value is None:
        with pytest.raises(ValueError, match=r"^expected a duration above 0"):
            parse(raw)
    else:
        assert parse(raw) == value
    assert Duration(whole=True)("24h") == 86_400
    assert Duration(above_zero=False, whole=True)("0") == 0
    with pytest.raises(ValueError, match="whole seconds"):
        Duration(whole=True)("1.5")


@pytest.mark.parametrize("url", [
    "https://convert.example.com", "http://127.0.0.1:8000", "https://example.com/convertly/",
    "http://[::1]:8000",
])
def test_public_urls_accepted(url: str) -> None:
    assert Settings.from_env({"CONVERTLY_PUBLIC_URL": url}, env_file=None).public_url == url


@pytest.mark.parametrize("url", [
    "notaurl", "convert.example.com", "ftp://example.com", "https://", "https://x.com?a=1",
    "https://x.com#top", "https://user:pw@x.com", "https://x.com:99999", "https://x.com:",
    "https://x .com",
])
def test_public_urls_refused(url: str) -> None:
    with pytest.raises(SettingsError, match=r"^CONVERTLY_PUBLIC_URL: expected an http"):
        Settings.from_env({"CONVERTLY_PUBLIC_URL": url}, env_file=None)


@pytest.mark.parametrize(("name", "url", "ok"), [
    ("CONVERTLY_BROKER_URL", "redis://127.0.0.1:6379/0", True),
    ("CONVERTLY_BROKER_URL", "rediss://:pw@redis.example.com:6380/1?ssl_cert_reqs=required",
     True),
    ("CONVERTLY_BROKER_URL", "redis://redis", True),
    # Celery cannot read a unix:// broker URL.
    ("CONVERTLY_BROKER_URL", "unix:///run/redis.sock", False),
    ("CONVERTLY_BROKER_URL", "http://redis:6379", False),
    ("CONVERTLY_BROKER_URL", "redis://redis:6379/zero", False),
    ("CONVERTLY_BROKER_URL", "redis://:6379/0", False),
    ("CONVERTLY_BROKER_URL", "redis://redis:70000/0", False),
    ("CONVERTLY_STATE_URL", "unix:///run/redis.sock?db=2", True),
    ("CONVERTLY_STATE_URL", "unix://run/redis.sock", False),
    ("CONVERTLY_STATE_URL", "unix:///run/redis.sock?db=two", False),
])
def test_redis_urls(name: str, url: str, ok: bool) -> None:
    env = {"CONVERTLY_BROKER_URL": "redis://redis:6379/0", name: url}
    if ok:
        settings = Settings.from_env(env, env_file=None)
        assert getattr(settings, name.removeprefix("CONVERTLY_").lower()) == url
    else:
        with pytest.raises(SettingsError, match=f"^{name}: expected a Redis URL"):
            Settings.from_env(env, env_file=None)


@pytest.mark.parametrize(("raw", "value"), [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
    ("false", False), ("0", False), ("no", False), ("Off", False),
])
def test_booleans(raw: str, value: bool) -> None:
    assert Settings.from_env({"CONVERTLY_S3_SECURE": raw}, env_file=None).s3_secure is value


def test_every_setting_refuses_nonsense_in_one_line_naming_it() -> None:
    """Each setting with a type of its own (all but free text: the host, secrets, paths, names
    of queues and buckets, ...) says, in one line, what it expects and what it got."""
    free_text = {_str, _secret, _path}
    for f in Settings.fields():
        if f.metadata["parse"] in free_text:
            continue
        name = f.metadata["env"]
        with pytest.raises(SettingsError) as raised:
            Settings.from_env({name: "no\nsuch value"}, env_file=None)
        message = str(raised.value)
        assert "\n" not in message
        assert message.startswith(f"{name}: expected "), message
        assert message.endswith(", got 'no\\nsuch value'"), message


def test_shown_hides_secrets_and_passwords() -> None:
    assert shown("s3cr3t", secret=True) == "'**********'"
    assert shown("redis://user:s3cr3t@h:6379/0") == "'redis://user:****@h:6379/0'"
    assert shown("x" * 500).endswith("...'") and len(shown("x" * 500)) == 120


def test_sizes_and_durations_say_their_unit() -> None:
    for f in Settings.fields():
        parse, text = f.metadata["parse"], f.metadata["help"]
        if isinstance(parse, ByteSize):
            assert "bytes" in text.lower() or "KiB" in text, f.metadata["env"]
        if isinstance(parse, Duration):
            assert "seconds" in text.lower(), f.metadata["env"]


def test_to_env_reads_back_as_the_same_settings() -> None:
    """What a process hands its children (Settings.to_env) passes the children's checks."""
    distributed = Settings(broker_url="redis://:pw@127.0.0.1:6379/0",
                           state_url="unix:///run/redis.sock?db=1", s3_endpoint="s3:9000",
                           s3_access_key="a", s3_secret_key="b",  # type: ignore[arg-type]
                           public_url="https://x.example.com", job_retention=86_400)
    for settings in (Settings(), distributed):
        assert Settings.from_env(settings.to_env(), env_file=None) == settings
