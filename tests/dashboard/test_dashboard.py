"""The dashboard in a real browser (Debian's Chromium, headless) against a real server:
sign-in, converting with upload and job progress, downloads decoded, the storage browser,
errors, and a phone-width screen. Screenshots go to test-artifacts/dashboard/."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2

from tests import images
from tests.dashboard.conftest import Server, Tab

if TYPE_CHECKING:
    from playwright.sync_api import Download, Locator, Page

JOB_TIMEOUT_MS = 30_000
PHONE = {"width": 375, "height": 812}


def _expect_clean(tab: Tab, *allowed: str) -> None:
    """No uncaught script error, and no console error but the resource failures expected."""
    unexpected = [e for e in tab.errors
                  if not any(fragment in e for fragment in ("Failed to load resource",
                                                             *allowed))]
    assert not unexpected, unexpected


def _saved(download: Download) -> bytes:
    return Path(download.path()).read_bytes()


def _item(page: Page, filename: str) -> Locator:
    return page.locator(f'li.file-item[data-file="{filename}"]')


def _drop(page: Page, selector: str, name: str, data: bytes, mime: str) -> None:
    """Drop a file on `selector` the way a drag from the desktop does (a DataTransfer)."""
    transfer = page.evaluate_handle(
        """([name, b64, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: mime}));
            return transfer;
        }""", [name, base64.b64encode(data).decode(), mime])
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def _file_payload(name: str, data: bytes, mime: str) -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


# --- first visit and sign-in -------------------------------------------------------------


def test_first_visit_asks_for_a_key_and_refuses_a_wrong_one(tab: Tab, server: Server) -> None:
    tab.open()
    page = tab.page
    assert page.title() == "Sign in · Convertly"
    assert page.get_by_role("heading", name="Sign in").is_visible()
    key_field = page.get_by_label("API key")
    assert key_field.get_attribute("type") == "password"
    assert page.evaluate("document.activeElement.id") == "api-key"  # ready to paste
    assert not page.get_by_role("navigation", name="Main").is_visible()
    tab.shot("01-first-visit-sign-in")

    key_field.fill("cvly_NotARealKeyAtAll0000000000000000000000")
    page.keyboard.press("Enter")  # the form submits from the keyboard
    error = page.locator("#signin-error")
    error.filter(has_text="not accepted").wait_for()
    assert "convertly keys list" in error.inner_text()
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    tab.shot("02-sign-in-wrong-key")
    _expect_clean(tab)


# --- convert -----------------------------------------------------------------------------


def test_sign_in_upload_convert_and_download(tab: Tab, server: Server) -> None:
    tenant = server.tenant("convert")
    page = tab.page
    tab.sign_in(tenant)
    assert page.evaluate("sessionStorage.getItem('convertly.apiKey')") == tenant.key
    assert page.evaluate("localStorage.getItem('convertly.apiKey')") is None

    # One file from the picker, one dropped on the zone.
    page.locator("#file-input").set_input_files(
        [_file_payload("photo.jpg", images.jpeg(320, 240), "image/jpeg")])
    _drop(page, "#dropzone", "drawing.png", images.png(200, 100), "image/png")
    photo, drawing = _item(page, "photo.jpg"), _item(page, "drawing.png")
    assert photo.get_by_label("Format").input_value() == "webp"  # the default for photos
    # Formats offered come from GET /api/formats for the file's kind.
    offered = photo.get_by_label("Format").locator("option").all_inner_texts()
    assert {"WEBP", "PNG", "AVIF", "PDF", "SVG"} <= set(offered)
    assert "MP3" not in offered
    drawing.get_by_label("Format").select_option("jpg")
    page.get_by_label("Resize", exact=True).select_option("width")  # for all files
    page.get_by_label("Width (px)").fill("100")
    page.locator("#compression").evaluate(
        "(el) => { el.value = 60; el.dispatchEvent(new Event('input')); }")
    assert page.locator("#compression-value").inner_text() == "60"
    assert drawing.get_by_label("Resize").input_value() == "width"
    # Every text the status line shows, to see the upload's progress events go by.
    page.evaluate("""() => {
        window.statusTexts = [];
        const status = document.getElementById("job-status");
        new MutationObserver(() => window.statusTexts.push(status.textContent))
            .observe(status, {childList: true, characterData: true, subtree: true});
    }""")
    page.get_by_role("button", name="Convert 2 files").click()

    page.locator("#job-status").filter(has_text="Done: 2 converted.").wait_for(
        timeout=JOB_TIMEOUT_MS)
    texts = page.evaluate("window.statusTexts")
    uploading = [t for t in texts if re.fullmatch(r"Uploading… [\d.]+ [KM]?B of [\d.]+ KB", t)]
    assert uploading, texts  # XMLHttpRequest upload events reached the page
    sent, _, total = uploading[-1].removeprefix("Uploading… ").partition(" of ")
    assert sent == total, texts
    assert page.locator("#upload-progress").evaluate("(el) => el.value") == 100
    assert page.locator("#job-progress").evaluate("(el) => el.value") == 100
    # The previews are the outputs themselves, loaded and decoded by the browser.
    for item, name in ((photo, "photo.webp"), (drawing, "drawing.jpg")):
        preview = item.get_by_role("img", name=f"Preview of {name}")
        preview.wait_for()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=preview.element_handle())
        assert preview.evaluate("(img) => img.naturalWidth") == 100
    tab.shot("03-convert-done")

    with page.expect_download() as first:
        photo.get_by_role("link", name="Download photo.webp").click()
    assert first.value.suggested_filename == "photo.webp"
    webp = images.decode(_saved(first.value))
    assert (webp.format, webp.size) == ("WEBP", (100, 75))
    assert images.mean_difference(webp.image, images.decode(images.jpeg(320, 240)).image) < 20

    with page.expect_download() as bundle:
        page.get_by_role("link", name=re.compile(r"^Download all \(zip")).click()
    with zipfile.ZipFile(io.BytesIO(_saved(bundle.value))) as archive:
        names = sorted(archive.namelist())
        assert names == ["drawing.jpg", "photo.webp"], names
        jpg = images.decode(archive.read("drawing.jpg"))
        assert (jpg.format, jpg.size) == ("JPEG", (100, 50))

    # Every API call but the public ones carried the key.
    calls = [(url, headers) for url, headers in tab.api_requests
             if "/api/formats" not in url and "/api/download/" not in url]
    assert {re.sub(r"\?.*|/[0-9a-f-]{36}$", "", url.removeprefix(server.base))
            for url, _ in calls} == {"/api/jobs"}
    for url, headers in calls:
        assert headers.get("authorization") == f"Bearer {tenant.key}", url
    _expect_clean(tab)


def test_a_bad_file_shows_the_servers_message_next_to_it(tab: Tab, server: Server) -> None:
    tenant = server.tenant("bad-file")
    page = tab.page
    tab.sign_in(tenant)
    page.locator("#file-input").set_input_files([
        _file_payload("notes.png", b"These are my notes, not a picture.\n" * 20, "image/png"),
        _file_payload("good.jpg", images.jpeg(160, 120), "image/jpeg"),
    ])
    page.get_by_role("button", name="Convert 2 files").click()
    page.locator("#job-status").filter(has_text="Done: 1 converted, 1 failed.").wait_for(
        timeout=JOB_TIMEOUT_MS)

    with server.client(tenant) as client:
        job = client.get("/api/jobs", params={"limit": 1}).json()["jobs"][0]
    failure = next(r for r in job["results"] if r["filename"] == "notes.png")
    assert failure["status"] == "failed" and failure["error"]
    bad = _item(page, "notes.png")
    assert bad.locator(".badge").inner_text() == "Failed"
    assert bad.get_by_role("alert").inner_text() == failure["error"]
    bad.locator(".thumb .thumb-label").wait_for()  # not a broken picture
    assert _item(page, "good.jpg").get_by_role("link", name="Download good.webp").is_visible()
    tab.shot("04-bad-file-error")
    _expect_clean(tab)


FOCUS_RING = """() => {
    const el = document.activeElement;
    // A visually hidden file input shows its focus on the zone or button that stands for it.
    const shown = el.classList.contains("visually-hidden")
        ? (el.closest(".dropzone") || el.nextElementSibling) : el;
    const style = getComputedStyle(shown);
    return {id: el.id || el.textContent.trim().slice(0, 40), tag: el.tagName,
            ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2};
}"""


def test_keyboard_reaches_the_controls_with_a_visible_focus(tab: Tab, server: Server) -> None:
    tab.sign_in(server.tenant("keyboard"))
    page = tab.page
    page.locator("#file-input").set_input_files(
        [_file_payload("photo.jpg", images.jpeg(64, 48), "image/jpeg")])
    _item(page, "photo.jpg").wait_for()
    page.locator("#convert-title").focus()
    reached = []
    for _ in range(20):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_RING)
        if focused["tag"] == "BODY":  # past the last control, on the way round
            continue
        assert focused["ring"], focused  # every stop shows where the focus is
        reached.append(focused["id"])
    for control in ("file-input", "all-format", "all-resize", "compression", "create-archive",
                    "archive-format", "convert-button"):
        assert control in reached, reached
    assert any(r.startswith("format-") for r in reached), reached
    page.locator("#file-input").focus()
    tab.shot("11-keyboard-focus-on-dropzone", full_page=False)
    _expect_clean(tab)


# --- storage -----------------------------------------------------------------------------


def _seed_storage(server: Server, client: httpx2.Client) -> dict[str, str]:
    """26 small images at the top level and one in a folder; returns name -> file id."""
    uploads = [("files", (f"photo-{n:02d}.png", images.png(48, 32, seed=n), "image/png"))
               for n in range(1, 27)]
    response = client.post("/api/files", files=uploads)
    assert response.status_code == 201, response.text
    ids = {f["filename"]: f["id"] for f in response.json()["files"]}
    folder = client.post("/api/folders", json={"name": "Holiday"})
    assert folder.status_code == 201, folder.text
    response = client.post("/api/files", data={"folderId": folder.json()["folder"]["id"]},
                           files=[("files", ("beach.jpg", images.jpeg(64, 48), "image/jpeg"))])
    assert response.status_code == 201, response.text
    return ids


def test_storage_browse_search_rename_delete_and_zip(tab: Tab, server: Server) -> None:
    tenant = server.tenant("storage")
    page = tab.page
    with server.client(tenant) as client:
        ids = _seed_storage(server, client)
        tab.sign_in(tenant, remember=True)
        assert page.evaluate("localStorage.getItem('convertly.apiKey')") == tenant.key
        page.get_by_role("link", name="Storage").click()
        cards = page.locator("li.file-card")
        page.locator("#page-info").filter(has_text="1–24 of 26").wait_for()
        assert cards.count() == 24
        assert page.get_by_role("button", name="Holiday").is_visible()
        first_thumb = cards.first.locator(".thumb img")
        page.wait_for_function("(img) => img.complete && img.naturalWidth === 48",
                               arg=first_thumb.element_handle())
        tab.shot("05-storage-browser")

        page.get_by_role("button", name="Next").click()
        page.locator("#page-info").filter(has_text="25–26 of 26").wait_for()
        assert cards.count() == 2
        page.get_by_role("button", name="Previous").click()
        page.locator("#page-info").filter(has_text="1–24 of 26").wait_for()

        page.get_by_label("Search files").fill("photo-07")
        page.get_by_label("Search files").press("Enter")
        page.locator("#storage-status").filter(has_text="1 file match").wait_for()
        assert cards.locator(".file-name").all_inner_texts() == ["photo-07.png"]
        page.get_by_role("button", name="Clear search").click()
        page.locator("#page-info").filter(has_text="1–24 of 26").wait_for()

        # Newest first: photo-26.png leads the first page.
        # Rename from the keyboard: the inline field takes the focus; Enter saves.
        target = page.locator(f'li.file-card[data-file-id="{ids["photo-26.png"]}"]')
        target.get_by_role("button", name="Rename photo-26.png").click()
        field = page.get_by_label("New name for photo-26.png")
        assert page.evaluate("document.activeElement.id") == f"rename-{ids['photo-26.png']}"
        field.fill("sunset.png")
        field.press("Enter")
        target.locator(".file-name").filter(has_text="sunset.png").wait_for()
        renamed = client.get(f"/api/files/{ids['photo-26.png']}")
        assert renamed.json()["file"]["filename"] == "sunset.png"

        # Delete, confirmed in the browser's dialog.
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Delete photo-25.png").click()
        page.locator("#storage-status").filter(has_text="Deleted “photo-25.png”").wait_for()
        assert client.get(f"/api/files/{ids['photo-25.png']}").status_code == 404
        assert page.locator(f'li.file-card[data-file-id="{ids["photo-25.png"]}"]').count() == 0
        page.locator("#page-info").filter(has_text="of 25").wait_for()

        # Bulk download of two selected files as one zip.
        page.get_by_label("Select sunset.png").check()
        page.get_by_label("Select photo-24.png").check()
        with page.expect_download() as bundle:
            page.get_by_role("button", name="Download 2 selected (zip)").click()
        with zipfile.ZipFile(io.BytesIO(_saved(bundle.value))) as archive:
            assert sorted(archive.namelist()) == ["photo-24.png", "sunset.png"]
            assert images.decode(archive.read("sunset.png")).size == (48, 32)

        page.get_by_role("button", name="Holiday").click()
        page.locator("li.file-card .file-name").filter(has_text="beach.jpg").wait_for()
        assert cards.count() == 1
        assert page.locator("#breadcrumbs [aria-current]").inner_text() == "Holiday"
        tab.shot("06-storage-folder")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    _expect_clean(tab)


# --- errors ------------------------------------------------------------------------------


def test_network_errors_and_a_revoked_key_are_shown_clearly(tab: Tab, server: Server) -> None:
    tenant = server.tenant("errors")
    page = tab.page
    tab.sign_in(tenant)
    page.get_by_role("link", name="Storage").click()
    page.locator("#storage-status").filter(has_text="Nothing stored yet").wait_for()

    tab.context.set_offline(True)
    page.get_by_role("button", name="Search").click()
    page.locator("#storage-error").filter(has_text="Cannot reach the Convertly server").wait_for()
    tab.shot("07-network-error")
    tab.context.set_offline(False)

    server.services.keys.revoke(tenant.prefix)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert "no longer accepted" in page.locator("#signin-error").inner_text()
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    tab.shot("08-key-revoked")
    _expect_clean(tab, "net::ERR_INTERNET_DISCONNECTED")


# --- phone width -------------------------------------------------------------------------


def test_phone_width_never_scrolls_sideways(tab_factory: Any, server: Server) -> None:
    tenant = server.tenant("phone")
    tab: Tab = tab_factory(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                           has_touch=True)
    page = tab.page
    tab.open()
    assert tab.overflow() == 0
    tab.sign_in(tenant)
    long_name = "holiday-photos-from-the-summer-of-2026-in-the-mountains-" * 2 + "final.jpg"
    page.locator("#file-input").set_input_files([
        _file_payload(long_name, images.jpeg(120, 90), "image/jpeg"),
        _file_payload("clip.mp4", b"\x00" * 64, "video/mp4"),
    ])
    _item(page, long_name).wait_for()
    assert tab.overflow() == 0
    tab.shot("09-phone-convert")

    with server.client(tenant) as client:
        folder = client.post("/api/folders", json={"name": "A folder with a long name " * 4})
        assert folder.status_code == 201, folder.text
        response = client.post("/api/files", files=[
            ("files", (long_name, images.jpeg(120, 90), "image/jpeg"))])
        assert response.status_code == 201, response.text
    page.get_by_role("link", name="Storage").click()
    page.locator("li.file-card").first.wait_for()
    assert tab.overflow() == 0
    tab.shot("10-phone-storage")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert tab.overflow() == 0
    _expect_clean(tab)


def test_index_serves_the_page_and_json_on_request(server: Server) -> None:
    page = httpx2.get(server.base + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    script = re.search(r'src="(/dashboard/[0-9a-f]{12}/app\.js)"', page.text)
    assert script, page.text
    asset = httpx2.get(server.base + script.group(1))
    assert asset.status_code == 200
    assert "immutable" in asset.headers["cache-control"]
    assert "javascript" in asset.headers["content-type"]
    stale = httpx2.get(server.base + "/dashboard/000000000000/app.js")
    assert stale.status_code == 404 and stale.json()["code"] == "NOT_FOUND"
    index = httpx2.get(server.base + "/", headers={"Accept": "application/json"})
    assert index.headers["content-type"] == "application/json"
    assert json.loads(index.text)["formats"] == server.base + "/api/formats"
