"""The dashboard's streams page in Chromium: a ready stream is listed, plays through the
vendored hls.js (every request to this server, none elsewhere), switches renditions when
asked, shows its chapters, and its plays are counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from convertly.streams.model import Access, Chapter
from tests.dashboard.conftest import Server, Tab
from tests.dashboard.test_dashboard import _expect_clean
from tests.streams.packaged import HEIGHTS, package, store_ready

if TYPE_CHECKING:
    from playwright.sync_api import Page

PLAYER = "document.getElementById('stream-player')"


def wait_until(page: Page, expression: str, timeout: float = 15.0) -> None:
    """Poll `expression` in the page until it is true (the page's policy forbids the eval
    that Playwright's wait_for_function runs)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package(tmp_path_factory.mktemp("packaged"), seconds=6)


def test_a_stream_plays_and_switches_renditions(tab: Tab, server: Server,
                                                packaged: Path) -> None:
    tenant = server.tenant("streams")
    stream = store_ready(server.services, tenant.tenant, packaged, access=Access.SIGNED,
                         allowed_domains=("app.example.com",), duration=6.0,
                         title="Lesson one", chapters=(Chapter("chap_1", "Start", 0.0),
                                                       Chapter("chap_2", "Middle", 3.0)))
    requested: list[str] = []
    tab.page.on("request", lambda request: requested.append(request.url))
    tab.sign_in(tenant)
    page = tab.page
    page.get_by_role("link", name="Streams").click()
    page.get_by_role("heading", name="Video streams").wait_for()
    card = page.locator(f'li.job-card[data-stream-id="{stream.id}"]')
    assert "Lesson one" in card.inner_text() and "144p · 180p" in card.inner_text()
    card.get_by_role("button", name="Play Lesson one").click()
    page.locator("#player-status").filter(has_text="Playing").wait_for()
    assert page.locator("#stream-quality option").all_inner_texts() == [
        "Auto", *(f"{h}p" for h in HEIGHTS)]
    assert page.locator("#stream-chapters").inner_text().split("\n") == [
        "0:00 Start", "0:03 Middle"]

    page.evaluate(f"{PLAYER}.muted = true; {PLAYER}.play()")
    wait_until(page, f"{PLAYER}.currentTime > 0.3 && {PLAYER}.videoHeight > 0")
    for index, height in ((0, HEIGHTS[0]), (1, HEIGHTS[1])):
        page.select_option("#stream-quality", str(index))
        wait_until(page, f"{PLAYER}.videoHeight === {height}")
        page.locator("#player-status").filter(has_text=f"Playing {height}p").wait_for()
    tab.shot("17-streams-player")

    # Everything came from this server: the page, hls.js, the manifests and segments.
    assert requested and all(url.startswith((server.base, "blob:", "data:"))
                             for url in requested), requested
    segments = [url for url in requested if ".m4s" in url]
    assert any("seg-0-" in url for url in segments) and any("seg-1-" in url for url in segments)
    wait_until(page, "performance.getEntriesByType('resource')"
               ".some(e => e.name.includes('/api/video/playback-events'))")
    page.get_by_role("button", name="Close player").click()
    counts = server.services.playback.counts(stream.id)
    assert counts.plays == 1 and counts.events >= 2
    _expect_clean(tab)
