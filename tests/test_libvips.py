"""libvips threads per conversion process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from convertly.executors.libvips import threads_for


@pytest.mark.parametrize(("processes", "cores", "expected"), [
    (1, 1, 1), (1, 8, 8), (2, 2, 1), (2, 8, 4), (3, 8, 2), (8, 2, 1), (0, 4, 4),
])
def test_cores_are_shared_out_among_the_processes(processes: int, cores: int,
                                                   expected: int) -> None:
    assert threads_for(processes, cores, environ={}) == expected


@pytest.mark.parametrize(("raw", "expected"), [("3", 3), (" 1 ", 1), ("0", 4), ("x", 4),
                                                ("", 4)])
def test_vips_concurrency_wins_when_it_is_a_positive_number(raw: str, expected: int) -> None:
    assert threads_for(2, 8, environ={"VIPS_CONCURRENCY": raw}) == expected


def test_configure_sets_the_threads_and_turns_the_cache_off() -> None:
    code = ("import os, pyvips\n"
            "from convertly.executors.libvips import configure, threads_for\n"
            "configure(2)\n"
            "print(pyvips.concurrency_get(), threads_for(2), pyvips.cache_get_max())\n")
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    assert out[0] == out[1]
    assert out[2] == "0"
