"""`Recent`: a value read once is reused until it is `ttl` seconds old."""

from __future__ import annotations

from convertly.recent import Recent


def test_a_value_is_loaded_once_while_it_is_fresh() -> None:
    loads: list[str] = []

    def load(key: str) -> str:
        loads.append(key)
        return key.upper()

    kept: Recent[str, str] = Recent(ttl=60)
    assert [kept.get("a", lambda: load("a")) for _ in range(3)] == ["A"] * 3
    assert kept.get("b", lambda: load("b")) == "B"
    assert loads == ["a", "b"]
    stale: Recent[str, str] = Recent(ttl=0)
    stale.get("a", lambda: load("a"))
    stale.get("a", lambda: load("a"))
    assert loads == ["a", "b", "a", "a"]


def test_the_least_recently_read_value_goes_first() -> None:
    kept: Recent[int, int] = Recent(ttl=60, size=2)
    kept.get(1, lambda: 1)
    kept.get(2, lambda: 2)
    kept.get(1, lambda: -1)  # read again: 2 is now the oldest
    kept.get(3, lambda: 3)
    assert kept.get(1, lambda: -1) == 1
    assert kept.get(2, lambda: -2) == -2
