"""convertly.later: calls made a little later on one thread, unless cancelled first."""

from __future__ import annotations

import multiprocessing
import threading
import time

from convertly import later


def test_a_call_runs_after_its_delay_and_in_order() -> None:
    ran: list[tuple[str, float]] = []
    done = threading.Event()
    start = time.monotonic()

    def last() -> None:
        ran.append(("b", time.monotonic() - start))
        done.set()

    later.call_later(0.3, last)
    later.call_later(0.1, lambda: ran.append(("a", time.monotonic() - start)))
    assert done.wait(5)
    assert [name for name, _ in ran] == ["a", "b"]
    assert ran[0][1] >= 0.1 and ran[1][1] >= 0.3


def test_a_cancelled_call_never_runs() -> None:
    ran: list[str] = []
    done = threading.Event()
    call = later.call_later(0.1, lambda: ran.append("cancelled"))
    later.call_later(0.3, done.set)
    call.cancel()
    assert done.wait(5)
    assert ran == []


def test_a_failing_call_does_not_stop_the_others() -> None:
    done = threading.Event()

    def fail() -> None:
        raise RuntimeError("a call that fails")

    later.call_later(0.05, fail)
    later.call_later(0.1, done.set)
    assert done.wait(5)


def _in_child(queue: multiprocessing.Queue[str]) -> None:
    later.call_later(0.05, lambda: queue.put("ran in the child"))
    time.sleep(1)


def test_a_forked_child_gets_a_thread_of_its_own() -> None:
    later.call_later(0.01, lambda: None)  # the parent's thread is running
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=10) == "ran in the child"
    finally:
        child.join(10)
