"""The API reference page (/docs) in a real browser: reached from the dashboard, it renders
every operation of /openapi.json from the server's own files, and no request leaves the
server's loopback address."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx2

from tests.dashboard.conftest import Tab


def test_docs_render_every_operation_from_this_server(tab: Tab) -> None:
    page = tab.page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    tab.open()
    page.get_by_role("link", name="API", exact=True).click()
    page.wait_for_url(f"{tab.server.base}/docs")
    spec = httpx2.get(f"{tab.server.base}/openapi.json", timeout=10).json()
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    blocks = page.locator(".opblock")
    blocks.first.wait_for()
    assert blocks.count() == len(operations)
    page.get_by_text("/api/convert", exact=True).first.wait_for()
    assert page.locator(".swagger-ui .info .title").inner_text().startswith(spec["info"]["title"])
    own = urlsplit(tab.server.base).netloc
    assert requested and all(
        url.startswith("data:") or urlsplit(url).netloc == own for url in requested), requested
    assert f"{tab.server.base}/openapi.json" in requested
    assert not tab.errors, tab.errors
