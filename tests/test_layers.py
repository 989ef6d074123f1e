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
