"""The web dashboard: `GET /` answers its page to browsers (and the JSON service index to
clients that ask for `application/json`); `/dashboard/<version>/...` serves its static files.

The files live in `convertly/dashboard/` and are shipped as they are: no build step, no CDN.
Asset URLs carry a version (a hash of the files), so assets are cached for a year as
immutable while the page itself is revalidated on every visit; ES modules import each other
by relative URL and so inherit the version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from convertly.api import endpoints

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
ASSETS_PREFIX = "/dashboard"
ASSETS_PLACEHOLDER = "{{assets}}"
IMMUTABLE = "public, max-age=31536000, immutable"


def files_version(directory: Path = DASHBOARD_DIR) -> str:
    """A short hash of every file's name and content: changes whenever the dashboard does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def wants_json(accept: str) -> bool:
    """True when the Accept header names application/json at least as strongly as
    text/html (`*/*` alone, or no header, gets the page)."""
    weights = {"application/json": 0.0, "text/html": 0.0}
    for part in accept.split(","):
        media, *params = part.split(";")
        media = media.strip().lower()
        if media not in weights:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[media] = max(weights[media], q)
    return weights["application/json"] > 0 and (
        weights["application/json"] >= weights["text/html"])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def security_headers(public_url: str) -> dict[str, str]:
    """Headers of the page: everything comes from this server (download links and playback
    URLs may live at CONVERTLY_PUBLIC_URL), nothing inline, no framing."""
    extra = _origin(public_url)
    own = f"'self' {extra}".strip()
    policy = "; ".join([
        "default-src 'self'",
        f"img-src {own} data: blob:",
        # The streams page's player: segments reach the <video> through a MediaSource.
        f"media-src {own} blob:",
        f"connect-src {own}",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        # The page names itself to this server only (a stream restricted to some domains
        # plays here: the Referer is this server's), never to other sites.
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-cache",
        "Vary": "Accept",
    }


class DashboardFiles(StaticFiles):
    """The dashboard's static files under `<version>/<path>`; any other version is a 404, so
    a stale page never caches today's files under yesterday's URL."""

    def __init__(self, directory: Path = DASHBOARD_DIR, prefix: str = ASSETS_PREFIX) -> None:
        super().__init__(directory=directory)
        self.version = files_version(directory)
        self.page = (directory / "index.html").read_text(encoding="utf-8").replace(
            ASSETS_PLACEHOLDER, f"{prefix}/{self.version}")

    async def get_response(self, path: str, scope: Scope) -> Response:
        version, _, rest = path.partition("/")
        if version != self.version or not rest or rest == "index.html":
            raise HTTPException(status_code=404)
        response = await super().get_response(rest, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = IMMUTABLE
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


FILES = DashboardFiles()


async def index(request: Request) -> Response:
    """The dashboard page, or the JSON service index for `Accept: application/json`."""
    if wants_json(request.headers.get("accept", "")):
        response = await endpoints.index(request)
        response.headers["Vary"] = "Accept"
        return response
    settings = request.app.state.settings
    return HTMLResponse(FILES.page, headers=security_headers(settings.public_url))
