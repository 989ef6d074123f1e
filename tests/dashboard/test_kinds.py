"""The dashboard in Chromium: targets and controls by the file's kind (from GET /api/formats
and, for archives, the names the archive holds), the PDF page picker, statuses that follow
progress, options usable again after a job and readable page previews."""

from __future__ import annotations

import base64
import gzip
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import rarfile
from PIL import Image

from tests import images
from tests.dashboard.conftest import Server, Tab
from tests.dashboard.test_dashboard import (
    JOB_TIMEOUT_MS,
    _expect_clean,
    _file_payload,
    _item,
)

DATA = Path(__file__).resolve().parents[1] / "converters" / "data"
PACKING = {"ZIP", "7Z", "TAR", "TGZ", "GZ", "BZ2", "XZ"}


def _offered(tab: Tab, filename: str) -> set[str]:
    return set(_item(tab.page, filename).get_by_label("Format").locator("option")
               .all_inner_texts())


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _two_page_pdf() -> bytes:
    """Page 1 landscape and dark; page 2 portrait and almost white (a page of faint text)."""
    first = Image.new("RGB", (300, 150), (40, 60, 90))
    second = Image.new("RGB", (150, 300), (252, 252, 250))
    for y in range(40, 260, 20):  # faint grey lines, like text on a white page
        second.paste((236, 236, 236), (20, y, 130, y + 4))
    buffer = io.BytesIO()
    first.save(buffer, "PDF", save_all=True, append_images=[second], resolution=72)
    return buffer.getvalue()


def test_targets_and_controls_follow_the_kind(tab: Tab, server: Server) -> None:
    tab.sign_in(server.tenant("kinds"))
    page = tab.page
    page.locator("#file-input").set_input_files([
        _file_payload("notes.rar", (DATA / "rar5-crc.rar").read_bytes(), ""),
        _file_payload("pictures.zip", _zip({"a/photo.png": images.png(32, 32),
                                            "readme.txt": b"hello"}), "application/zip"),
        _file_payload("photo.jpg", images.jpeg(64, 48), "image/jpeg"),
        _file_payload("song.mp3", b"ID3" + b"\x00" * 64, "audio/mpeg"),
        _file_payload("report.pdf", _two_page_pdf(), "application/pdf"),
    ])
    rar = _item(page, "notes.rar")
    # The RAR's own headers name two text files: nothing in it converts to media, so only
    # re-packing is offered (it was FLAC, MP3, MOV and the rest).
    rar.locator(".hint").filter(has_text="holds 2 files: 2 other").wait_for()
    assert _offered(tab, "notes.rar") == PACKING
    assert _item(page, "notes.rar").get_by_label("Format").input_value() == "zip"
    # A zip holding a PNG: image targets, but no audio or video.
    _item(page, "pictures.zip").locator(".hint").filter(has_text="1 PNG").wait_for()
    zipped = _offered(tab, "pictures.zip")
    assert {"PNG", "WEBP", "JPG"} | PACKING <= zipped and not {"MP3", "FLAC", "MOV"} & zipped
    photo = _offered(tab, "photo.jpg")
    assert {"WEBP", "PNG", "AVIF", "PDF"} <= photo and not {"MP3", "FLAC", "MOV"} & photo
    song = _offered(tab, "song.mp3")
    assert {"M4A", "FLAC", "OGG", "WAV"} <= song and not {"PNG", "MOV", "MP4"} & song

    # Resize only where there are pixels to size; a page number only for the PDF.
    for name, resize, page_picker in (("notes.rar", 0, 0), ("pictures.zip", 0, 0),
                                      ("photo.jpg", 1, 0), ("song.mp3", 0, 0),
                                      ("report.pdf", 0, 1)):
        item = _item(page, name)
        assert item.get_by_label("Resize").count() == resize, name
        assert item.get_by_label("Page", exact=False).count() == page_picker, name
    pdf = _item(page, "report.pdf")
    pdf.locator(".hint").filter(has_text="PDF · 2 pages").wait_for()
    assert pdf.get_by_label("Page").get_attribute("max") == "2"
    # Re-packed, a PDF has no page to pick.
    pdf.get_by_label("Format").select_option("zip")
    assert pdf.get_by_label("Page").count() == 0
    tab.shot("12-targets-by-kind")

    # With only audio and archives left, the shared Resize goes too.
    for name in ("photo.jpg", "report.pdf", "pictures.zip"):
        page.get_by_role("button", name=f"Remove {name}").click()
    assert not page.locator("#resize-field").is_visible()
    shared = page.get_by_label("Target format").locator("option").all_inner_texts()
    assert set(shared[1:]) == PACKING, shared  # what both a RAR and an MP3 can become
    _expect_clean(tab)


def test_pdf_page_picker_and_a_readable_page_preview(tab: Tab, server: Server) -> None:
    tenant = server.tenant("pdf-page")
    tab.sign_in(tenant)
    page = tab.page
    # The `pages` field of every form the page sends.
    page.evaluate("""() => {
        window.sentPages = [];
        const send = XMLHttpRequest.prototype.send;
        XMLHttpRequest.prototype.send = function (body) {
            if (body instanceof FormData) window.sentPages.push(body.get("pages"));
            return send.call(this, body);
        };
    }""")
    page.locator("#file-input").set_input_files(
        [_file_payload("report.pdf", _two_page_pdf(), "application/pdf")])
    pdf = _item(page, "report.pdf")
    pdf.locator(".hint").filter(has_text="2 pages").wait_for()
    assert pdf.get_by_label("Format").input_value() == "png"
    pdf.get_by_label("Page").fill("2")
    pdf.get_by_label("Page").dispatch_event("change")
    page.get_by_role("button", name="Convert").click()
    page.locator("#job-status").filter(has_text="Done: 1 converted.").wait_for(
        timeout=JOB_TIMEOUT_MS)

    assert page.evaluate("window.sentPages") == ["[2]"]
    with server.client(tenant) as client:
        result = client.get("/api/jobs", params={"limit": 1}).json()["jobs"][0]["results"][0]
    assert result["notes"][0] == "Page 2 of 2."
    assert abs(result["height"] / result["width"] - 2) < 0.02  # the portrait page 2, not 1

    # The near-white page shows as a page: on a checkerboard, with its own edge and shadow,
    # and sized to the page (not stretched over the whole square).
    preview = pdf.get_by_role("img", name="Preview of report.png")
    preview.wait_for()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                           arg=preview.element_handle())
    looks = preview.evaluate("""(img) => {
        const style = getComputedStyle(img);
        const box = img.getBoundingClientRect();
        const thumb = getComputedStyle(img.parentElement);
        return {border: parseFloat(style.borderTopWidth), color: style.borderTopColor,
                shadow: style.boxShadow, ratio: box.height / box.width,
                thumbImage: thumb.backgroundImage, thumbColor: thumb.backgroundColor};
    }""")
    assert looks["border"] >= 1 and looks["color"] != "rgb(255, 255, 255)", looks
    assert looks["shadow"] != "none", looks
    assert 1.8 < looks["ratio"] < 2.2, looks
    assert "gradient" in looks["thumbImage"] and looks["thumbColor"] != "rgb(255, 255, 255)"
    tab.shot("13-pdf-page-preview")

    # The options work again after the job: convert the same file again, to JPG this time.
    assert not page.locator("#all-options").is_disabled()
    assert pdf.get_by_label("Format").is_enabled()
    page.get_by_label("Target format").select_option("jpg")
    assert pdf.get_by_label("Format").input_value() == "jpg"
    page.get_by_role("button", name="Convert again").click()
    pdf.get_by_role("link", name="Download report.jpg").wait_for(timeout=JOB_TIMEOUT_MS)
    assert not page.locator("#all-options").is_disabled()
    assert page.evaluate("window.sentPages") == ["[2]", "[2]"]
    _expect_clean(tab)


STATUS_LOG = """() => {
    window.seen = [];
    const list = document.getElementById("file-list");
    const record = () => {
        for (const item of list.querySelectorAll("li.file-item")) {
            const bar = item.querySelector(".file-status progress");
            window.seen.push({badge: item.querySelector(".badge").textContent,
                              bar: bar ? bar.value : null});
        }
    };
    new MutationObserver(record).observe(list, {childList: true, subtree: true});
}"""


def test_file_status_follows_its_progress(tab: Tab, server: Server, tmp_path: Path) -> None:
    audio = tmp_path / "long.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                    "-i", "anoisesrc=d=300:c=pink:r=22050", "-ac", "1", "-c:a", "aac",
                    "-b:a", "32k", str(audio)], check=True, timeout=60)
    tab.sign_in(server.tenant("status"))
    page = tab.page
    # The mapping itself, from the module the page runs.
    states = page.evaluate("""async () => {
        const src = document.querySelector("script[type=module]").src;
        const {fileState} = await import(src.replace("app.js", "convert.js"));
        return [{status: "pending", progress: 0}, {status: "pending", progress: 97},
                {status: "completed", progress: 100}, {status: "failed", progress: 100}]
            .map(fileState);
    }""")
    assert states == ["queued", "processing", "completed", "failed"]

    page.locator("#file-input").set_input_files(
        [_file_payload("long.m4a", audio.read_bytes(), "audio/mp4")])
    item = _item(page, "long.m4a")
    assert item.get_by_label("Format").input_value() == "mp3"
    page.evaluate(STATUS_LOG)
    page.get_by_role("button", name="Convert").click()
    page.locator("#job-status").filter(has_text="Done: 1 converted.").wait_for(
        timeout=60_000)
    seen: list[dict[str, Any]] = page.evaluate("window.seen")
    badges = [entry["badge"] for entry in seen]
    for entry in seen:
        if entry["badge"] == "Waiting for a worker…":
            assert entry["bar"] is None, seen  # no bar filling beside "waiting"
        if entry["badge"].startswith("Converting…"):
            number = int(entry["badge"].removeprefix("Converting… ").rstrip("%"))
            assert entry["bar"] == number and 0 < number < 100, seen
    assert any(b.startswith("Converting… ") for b in badges), badges
    assert badges[-1] == "Done", badges
    tab.shot("14-status-done")
    _expect_clean(tab)



READ_NAMES = """async ([name, b64, kind]) => {
    const src = document.querySelector("script[type=module]").src;
    const {entryNames} = await import(src.replace("app.js", "archives.js"));
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return entryNames(new File([bytes], name), kind);
}"""


def test_archive_names_are_read_from_their_headers(tab: Tab, server: Server) -> None:
    tab.open()
    page = tab.page

    def names(name: str, data: bytes, kind: str) -> list[str] | None:
        found: list[str] | None = page.evaluate(
            READ_NAMES, [name, base64.b64encode(data).decode(), kind])
        return found

    def files_in_rar(path: Path) -> list[str]:
        with rarfile.RarFile(path) as archive:
            return [info.filename for info in archive.infolist() if not info.is_dir()]

    rar5 = DATA / "rar5-crc.rar"
    assert names("a.rar", rar5.read_bytes(), "rar") == files_in_rar(rar5) == [
        "stest1.txt", "stest2.txt"]
    rar4 = DATA / "rar3-subdirs.rar"  # RAR 4 headers, nested folders, a non-ASCII name
    read = names("b.rar", rar4.read_bytes(), "rar")
    assert read is not None
    expected = files_in_rar(rar4)
    assert len(read) == len(expected)
    assert [n for n in read if n.isascii()] == [n for n in expected if n.isascii()]
    assert all(n.endswith(".txt") for n in read)
    # Encrypted headers hide the names: unknown, and every target stays on offer.
    assert names("c.rar", (DATA / "rar5-hpsw.rar").read_bytes(), "rar") is None
    zipped = _zip({"x/photo.png": b"1", "song.mp3": b"2", "empty/": b""})
    assert names("d.zip", zipped, "zip") == ["x/photo.png", "song.mp3"]
    long_names = ["a/clip.mp4", "b" * 120 + "/deep.wav", "c.jpg"]  # a name past 100 bytes
    for layout in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        tarred = io.BytesIO()
        with tarfile.open(fileobj=tarred, mode="w", format=layout) as tar:
            for entry in long_names:
                info = tarfile.TarInfo(entry)
                info.size = 3
                tar.addfile(info, io.BytesIO(b"abc"))
        assert names("e.tar", tarred.getvalue(), "tar") == long_names, layout
    assert names("photo.png.gz", gzip.compress(b"x"), "gzip") == ["photo.png"]
    assert names("bundle.tar.gz", gzip.compress(tarred.getvalue()), "gzip") is None
    assert names("cut.zip", zipped[:40], "zip") is None  # damaged: unknown, no error
    _expect_clean(tab)
