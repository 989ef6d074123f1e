"""The dashboard's tools page in Chromium: the tools and their options come from the server's
/openapi.json; a watermark with an uploaded logo is run and its output previewed and
checked, a tool's refusal is shown, and a phone-width screen does not scroll sideways."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageStat

from tests.dashboard.conftest import Server, Tab
from tests.dashboard.test_dashboard import PHONE, _expect_clean, _file_payload

BLUE = (30, 60, 220)
RED = (220, 30, 30)


def _png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_tools_page_runs_a_tool_with_its_options_and_previews_the_output(
    tab: Tab, server: Server
) -> None:
    tab.sign_in(server.tenant("tools"))
    page = tab.page
    page.get_by_role("link", name="Tools").click()
    page.get_by_role("heading", name="Media tools").wait_for()
    # the list is filled once /openapi.json has arrived
    page.locator("#tool-name option[value='watermark']").wait_for(state="attached")
    tools = page.locator("#tool-name option").all_inner_texts()
    assert {"watermark", "pdf-preview", "image-to-pdf", "remove-background",
            "strip-metadata"} <= set(tools)

    page.get_by_label("Tool", exact=True).select_option("watermark")
    assert "Lay text or a logo" in page.locator("#tool-summary").inner_text()
    # the watermark's own options, read from its parameters
    for name in ("text", "logo", "position", "opacity", "scale", "margin", "color"):
        page.locator(f"#tool-param-{name}").wait_for()
    assert page.locator("#tool-param-logo").get_attribute("type") == "file"
    assert page.locator("#tool-param-opacity").get_attribute("max") == "1"

    page.get_by_label("File", exact=True).set_input_files(
        _file_payload("photo.png", _png((200, 100), BLUE), "image/png"))
    page.locator("#tool-param-logo").set_input_files(
        _file_payload("logo.png", _png((40, 20), RED), "image/png"))
    page.locator("#tool-param-position").select_option("top-left")
    page.locator("#tool-param-opacity").fill("1")
    page.locator("#tool-param-scale").fill("0.5")
    page.locator("#tool-param-margin").fill("10")
    page.get_by_role("button", name="Run tool").click()

    preview = page.get_by_role("img", name="Preview of photo.png")
    preview.wait_for()
    assert "watermark is done" in page.locator("#tool-status").inner_text()
    facts = page.locator(".tool-facts").inner_text()
    assert "width" in facts and "200" in facts
    source = preview.get_attribute("src") or ""
    if source.startswith("data:"):
        data = base64.b64decode(source.split(",", 1)[1])
    else:
        data = page.request.get(source).body()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (200, 100)
        mark = ImageStat.Stat(image.convert("RGB").crop((14, 14, 106, 56))).mean
        rest = ImageStat.Stat(image.convert("RGB").crop((120, 0, 200, 100))).mean
    assert max(abs(g - w) for g, w in zip(mark, RED, strict=True)) < 4
    assert max(abs(g - w) for g, w in zip(rest, BLUE, strict=True)) < 4
    tab.shot("20-tools-watermark")

    # A refusal is the server's own message, and the page stays usable.
    page.get_by_label("Tool", exact=True).select_option("remove-background")
    page.get_by_role("button", name="Run tool").click()
    error = page.locator("#tool-error")
    error.filter(has_text="CONVERTLY_BACKGROUND_MODEL").wait_for()
    page.set_viewport_size(PHONE)
    assert tab.overflow() == 0
    tab.shot("21-tools-phone", full_page=False)
    _expect_clean(tab)
