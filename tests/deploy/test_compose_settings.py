"""Every setting in deploy/.env reaches every Convertly service (compose.yaml's env_file).

`docker-compose config` resolves the file as `docker compose up` would, without an engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from convertly.settings import Settings
from tests.deploy.test_deploy import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    IMAGE_SERVICES,
    _compose_config,
    _yaml_to_data,
)

SETTING_NAMES = sorted(f.metadata["env"] for f in Settings.fields())


@pytest.fixture(scope="module")
def every_setting(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Any]:
    """A deploy/.env setting every setting to a value of its own, and the resolved config."""
    tmp = tmp_path_factory.mktemp("compose-settings")
    env_file = tmp / "compose.env"
    values = {name: f"from-env-{name.lower()}" for name in SETTING_NAMES}
    lines = [ENV_EXAMPLE.read_text(), f"SETTINGS_FILE={env_file}",
             "FLOWER_BASIC_AUTH=admin:test-flower-password"]
    lines += [f"{name}={value}" for name, value in values.items()]
    env_file.write_text("\n".join(lines) + "\n")
    proc = _compose_config(env_file, tmp)
    assert proc.returncode == 0, proc.stderr
    return values, _yaml_to_data(proc.stdout)


def test_settings_are_many() -> None:
    # The check below means something only if it covers the settings compose used to drop.
    assert len(SETTING_NAMES) > 60
    assert {"CONVERTLY_FETCH_TIMEOUT", "CONVERTLY_S3_REGION", "CONVERTLY_PUBLIC_URL"} \
        <= set(SETTING_NAMES)


@pytest.mark.parametrize("name", IMAGE_SERVICES)
def test_every_setting_from_env_reaches_the_service(
    every_setting: tuple[dict[str, str], Any], name: str,
) -> None:
    values, config = every_setting
    env = {k: str(v) for k, v in config["services"][name]["environment"].items()}
    missing = sorted(k for k in values if k not in env)
    assert missing == [], f"{name} does not get {missing}"
    wrong = {k: env[k] for k, v in values.items() if env[k] != v}
    assert wrong == {}, f"{name} gets other values than deploy/.env sets"


def test_compose_file_lists_no_setting_by_hand() -> None:
    # Only the settings that wire the stack together appear in compose.yaml, each read from
    # .env first; a new setting needs no line here.
    text = COMPOSE_FILE.read_text()
    named = {n for n in SETTING_NAMES if f"{n}:" in text}
    assert len(named) <= 10, named
    for n in named:
        assert f"{n}: ${{{n}:" in text, f"{n} in compose.yaml ignores deploy/.env"


def test_env_file_is_the_file_next_to_compose() -> None:
    assert "env_file: ${SETTINGS_FILE:-.env}" in COMPOSE_FILE.read_text()
    assert Path(COMPOSE_FILE.parent / ".env.example").exists()
