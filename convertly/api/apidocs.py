"""`GET /docs`: the API reference, Swagger UI rendering this server's /openapi.json.

Swagger UI's built files are vendored in `convertly/apidocs/` (see its README: the npm
package, version and licence) and served by the app under `/docs/assets/<version>/`, so the
page works offline and loads nothing from elsewhere; its Content-Security-Policy allows only
this server. URLs in the page are relative, so a `--root-path` prefix is kept.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from convertly.api.dashboard import DashboardFiles

APIDOCS_DIR = Path(__file__).resolve().parent.parent / "apidocs"
ASSETS_PREFIX = "/docs/assets"

# The page's asset URLs are relative to /docs (whose base is the root), for --root-path.
FILES = DashboardFiles(APIDOCS_DIR, prefix=ASSETS_PREFIX.lstrip("/"))

# Swagger UI sets style attributes from its scripts: inline styles are allowed, nothing else
# that is not from this server.
POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


async def page(request: Request) -> Response:
    return HTMLResponse(FILES.page, headers={
        "Content-Security-Policy": POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    })
