"""Programs the benchmarks run beside Convertly, kept out of the project's own venv: thumbor
(its Pillow engine; it pins its own Pillow) and py-spy, installed from PyPI into
bench/.peers on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parent / ".peers"
REQUIREMENTS = ("thumbor==7.8.0", "py-spy==0.4.3")


def ensure() -> Path:
    """The peers venv, created or updated when its pinned requirements changed."""
    marker = PEERS / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if marker.is_file() and marker.read_text() == wanted:
        return PEERS
    if not (PEERS / "bin" / "python").exists():
        # The interpreter this venv was made from (Python 3.11+), not our venv's packages.
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(PEERS)],
                       check=True)
        subprocess.run([str(PEERS / "bin" / "python"), "-m", "ensurepip", "--upgrade"],
                       check=True, capture_output=True)
    done = subprocess.run([str(PEERS / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", *REQUIREMENTS],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"installing {', '.join(REQUIREMENTS)} into {PEERS} failed:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    marker.write_text(wanted)
    return PEERS


def thumbor() -> Path:
    return ensure() / "bin" / "thumbor"


def py_spy() -> Path:
    return ensure() / "bin" / "py-spy"
