"""The import contracts in pyproject.toml ([tool.importlinter]) hold: workers/ depends on
convertly and not the other way round, only the app imports the HTTP layer, the client
modules import no server module, and no package has an import cycle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.is_file(), f"{lint_imports} is missing: run `make setup`"
    done = subprocess.run([str(lint_imports), "--no-logo", "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# What only the server needs; the client commands must run without any of it installed.
SERVER_PACKAGES = ("starlette", "uvicorn", "multipart", "python_multipart", "pyvips", "PIL",
                   "py7zr", "celery", "kombu", "redis", "minio")

_BLOCKING = f"""
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {SERVER_PACKAGES!r}:
            raise ImportError(f"{{name}} is blocked: a server module")
        return None

sys.meta_path.insert(0, Blocked())
from convertly.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_importing_the_command_loads_no_server_module() -> None:
    code = "import sys, convertly.cli; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = {name.partition(".")[0] for name in done.stdout.split()}
    assert loaded.isdisjoint(SERVER_PACKAGES), sorted(loaded & set(SERVER_PACKAGES))
    server_side = [name for name in done.stdout.split() if name.startswith(
        ("convertly.api", "convertly.app", "convertly.service", "convertly.executors",
         "convertly.converters", "convertly.storage", "workers"))]
    assert server_side == []


def _client(*argv: str) -> subprocess.CompletedProcess[str]:
    """`convertly ARGV` in a process where importing any server package fails."""
    env = {"PATH": "/usr/bin:/bin"}  # no CONVERTLY_* setting; no .env in tests/
    return subprocess.run([sys.executable, "-c", _BLOCKING, *argv], cwd=ROOT / "tests",
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_client_commands_run_with_the_server_packages_blocked() -> None:
    helped = _client("convert", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--format" in helped.stdout
    refused = _client("jobs", "list", "--url", "http://127.0.0.1:9", "--api-key", "cvly_x")
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stderr.startswith("convertly: "), refused.stderr
    no_broker = _client("workers")
    assert no_broker.returncode == 2, no_broker.stderr
    assert no_broker.stderr.startswith("convertly workers: set CONVERTLY_BROKER_URL")
