"""The dashboard's jobs page in Chromium: earlier jobs listed newest first with their status,
time and files, paged, and their outputs downloaded again."""

from __future__ import annotations

import time

from tests import images
from tests.dashboard.conftest import Server, Tab
from tests.dashboard.test_dashboard import PHONE, _expect_clean, _saved


def test_jobs_page_lists_earlier_jobs_and_downloads_again(tab: Tab, server: Server) -> None:
    tenant = server.tenant("history")
    with server.client(tenant) as client:
        job_ids = []
        for n in range(11):
            response = client.post("/api/jobs", data={"jobType": "convert", "format": "webp"},
                                   files=[("files", (f"shot-{n:02d}.png",
                                                     images.png(40 + n, 30, seed=n),
                                                     "image/png"))])
            assert response.status_code in (200, 201, 202), response.text
            job_ids.append(response.json()["jobId"])
        deadline = time.monotonic() + 60
        while client.get("/api/jobs", params={"limit": 1, "status": "completed"}).json()[
                "pagination"]["total"] < 11:
            assert time.monotonic() < deadline, "the jobs did not finish"
            time.sleep(0.2)
    tab.sign_in(tenant)
    page = tab.page
    page.get_by_role("link", name="Jobs").click()
    page.get_by_role("heading", name="Jobs").wait_for()
    page.locator("#jobs-page-info").filter(has_text="1–10 of 11").wait_for()
    cards = page.locator("li.job-card")
    assert cards.count() == 10
    newest = cards.first
    assert newest.get_attribute("data-job-id") == job_ids[-1]
    assert newest.locator(".badge").first.inner_text() == "Done"
    assert newest.locator("time").get_attribute("datetime")
    assert "1 file, 1 done" in newest.inner_text()
    tab.shot("15-jobs-page")

    with page.expect_download() as again:
        newest.get_by_role("link", name="Download shot-10.webp").click()
    picture = images.decode(_saved(again.value))
    assert (picture.format, picture.size) == ("WEBP", (50, 30))

    page.get_by_role("button", name="Older").click()
    page.locator("#jobs-page-info").filter(has_text="11–11 of 11").wait_for()
    assert cards.count() == 1 and cards.first.get_attribute("data-job-id") == job_ids[0]
    assert page.get_by_role("button", name="Older").is_disabled()
    page.get_by_role("button", name="Newer").click()
    page.locator("#jobs-page-info").filter(has_text="1–10 of 11").wait_for()
    page.set_viewport_size(PHONE)
    assert tab.overflow() == 0  # a phone-width screen never scrolls sideways
    tab.shot("16-jobs-page-phone", full_page=False)
    _expect_clean(tab)
