"""How many of a job's files one task of the embedded pool takes (`chunk_size`)."""

from __future__ import annotations

from convertly.executors.inprocess import MAX_CHUNK, chunk_size


def test_one_file_until_the_pace_is_known() -> None:
    assert chunk_size(None, 1000, 2) == 1


def test_quick_files_go_by_the_chunk_and_slow_ones_alone() -> None:
    assert chunk_size(0.005, 1000, 2) == 10  # 50 ms of work
    assert chunk_size(0.00001, 1000, 2) == MAX_CHUNK
    assert chunk_size(0.4, 1000, 2) == 1


def test_a_shallow_queue_is_spread_over_every_worker() -> None:
    assert chunk_size(0.001, 12, 2) == 3  # two tasks' worth for each of two workers
    assert chunk_size(0.001, 3, 2) == 1
