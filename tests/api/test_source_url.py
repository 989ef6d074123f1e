"""`sourceUrl` in place of uploaded files (what Convertly's SDKs send for a URL input): the
server downloads the file from a real HTTP server on loopback, follows redirects, and refuses
what it must (size, errors, loops). These run on the small-limits app (64 KiB per file),
which may fetch from this machine (CONVERTLY_FETCH_ALLOW_PRIVATE)."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx2
import pytest

from tests import images
from tests.api.support import AppEnv, assert_error, wait_for_job
from tests.origin import loopback_origin

PHOTO = images.jpeg(160, 120)
BIG = b"\xff" * (200 * 1024)  # over the app's 64 KiB per file


class _Origin(BaseHTTPRequestHandler):
    """Routes: /photo.jpg, /download?id=7 (named by Content-Disposition), /moved (302 to
    /photo.jpg), /loop (302 to itself), /missing (404), /big and /big-chunked (200 KiB)."""

    def do_GET(self) -> None:
        path = self.path
        if path == "/photo.jpg":
            self._send(200, PHOTO, {"Content-Type": "image/jpeg"})
        elif path.startswith("/download"):
            self._send(200, PHOTO, {"Content-Disposition": 'attachment; filename="Holiday.jpg"'})
        elif path == "/moved":
            self._send(302, b"", {"Location": "/photo.jpg"})
        elif path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        elif path == "/big":
            self._send(200, BIG, {})
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(BIG), 16 * 1024):
                chunk = BIG[start:start + 16 * 1024]
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404, b"not here", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with loopback_origin(_Origin) as base:
        yield base


def _convert(env: AppEnv, url: str, path: str = "/api/convert",
             **fields: str) -> httpx2.Response:
    tenant = env.new_tenant()
    return env.client.post(path, headers=tenant.headers,
                           files={"sourceUrl": (None, url),
                                  **{k: (None, v) for k, v in fields.items()}})


def test_a_source_url_converts_like_an_upload(limited_env: AppEnv, origin: str) -> None:
    response = _convert(limited_env, f"{origin}/photo.jpg", format="png")
    assert response.status_code == 200, response.text
    [result] = response.json()["files"]
    assert result["filename"] == "photo.png"
    assert (result["width"], result["height"]) == (160, 120)
    assert result["originalSize"] == len(PHOTO)


def test_redirects_are_followed_and_the_server_names_the_file(limited_env: AppEnv,
                                                             origin: str) -> None:
    moved = _convert(limited_env, f"{origin}/moved", format="webp")
    assert moved.json()["files"][0]["filename"] == "photo.webp"
    named = _convert(limited_env, f"{origin}/download?id=7", format="webp")
    assert named.json()["files"][0]["filename"] == "Holiday.webp"


def test_a_source_url_job_completes(limited_env: AppEnv, origin: str) -> None:
    tenant = limited_env.new_tenant()
    response = limited_env.client.post(
        "/api/jobs", headers=tenant.headers,
        files={"sourceUrl": (None, f"{origin}/photo.jpg"), "format": (None, "webp")})
    assert response.status_code == 200, response.text
    job = wait_for_job(limited_env.client, tenant, response.json()["jobId"])
    assert job["status"] == "completed", job
    assert job["results"][0]["filename"] == "photo.jpg"
    assert job["results"][0]["format"] == "webp"


def test_a_media_tool_takes_a_source_url(limited_env: AppEnv, origin: str) -> None:
    response = _convert(limited_env, f"{origin}/download?id=7", "/api/media/strip-metadata")
    assert response.status_code == 200, response.text
    [result] = response.json()["files"]
    assert (result["filename"], result["width"], result["height"]) == ("Holiday.jpg", 160, 120)
    both = limited_env.client.post(
        "/api/media/strip-metadata", headers=limited_env.new_tenant().headers,
        files={"file": ("a.jpg", PHOTO), "sourceUrl": (None, f"{origin}/photo.jpg")})
    assert_error(both, 400, "INVALID_FIELD", "sourceUrl", "not both")


@pytest.mark.parametrize("route", ["/big", "/big-chunked"])
def test_a_source_over_the_file_limit_is_413(limited_env: AppEnv, origin: str,
                                             route: str) -> None:
    response = _convert(limited_env, f"{origin}{route}", format="png")
    assert_error(response, 413, "FILE_TOO_LARGE", "sourceUrl",
                 "CONVERTLY_MAX_FILE_BYTES")


@pytest.mark.parametrize("route,says", [
    ("/missing", "HTTP 404"),
    ("/loop", "redirects"),
])
def test_a_source_that_cannot_be_downloaded_is_400(limited_env: AppEnv, origin: str,
                                                   route: str, says: str) -> None:
    response = _convert(limited_env, f"{origin}{route}", format="png")
    assert_error(response, 400, "INVALID_FIELD", "'sourceUrl'", says)


def test_a_closed_port_is_400(limited_env: AppEnv) -> None:
    response = _convert(limited_env, "http://127.0.0.1:9/a.jpg", format="png")
    assert_error(response, 400, "INVALID_FIELD", "'sourceUrl'",
                 "connection refused")


def test_files_and_a_source_url_together_are_refused(limited_env: AppEnv,
                                                     origin: str) -> None:
    tenant = limited_env.new_tenant()
    response = limited_env.client.post(
        "/api/convert", headers=tenant.headers,
        files={"files": ("a.jpg", PHOTO, "image/jpeg"),
               "sourceUrl": (None, f"{origin}/photo.jpg"), "format": (None, "png")})
    assert_error(response, 400, "INVALID_FIELD", "'sourceUrl'", "not both")


def test_other_schemes_are_refused(limited_env: AppEnv) -> None:
    response = _convert(limited_env, "file:///etc/passwd", format="png")
    assert_error(response, 400, "INVALID_FIELD", "'sourceUrl'",
                 "http://")


def test_a_keyed_source_url_job_is_fingerprinted_by_its_url(limited_env: AppEnv,
                                                            origin: str) -> None:
    tenant = limited_env.new_tenant()

    def send(url: str) -> httpx2.Response:
        return limited_env.client.post(
            "/api/jobs", headers={**tenant.headers, "Idempotency-Key": "from-a-url"},
            files={"sourceUrl": (None, f"{origin}{url}"), "format": (None, "webp")})

    first = send("/photo.jpg")
    assert first.status_code == 200, first.text
    again = send("/photo.jpg")
    assert (again.status_code, again.json()["jobId"]) == (200, first.json()["jobId"])
    # The same bytes from another URL are another request.
    assert_error(send("/moved"), 409, "IDEMPOTENCY_MISMATCH")
    assert wait_for_job(limited_env.client, tenant, first.json()["jobId"])["status"] == \
        "completed"


@pytest.mark.parametrize("path", ["/api/convert", "/api/compress"])
def test_a_form_urlencoded_source_url_converts(limited_env: AppEnv, origin: str,
                                               path: str) -> None:
    tenant = limited_env.new_tenant()
    fields = {"sourceUrl": f"{origin}/photo.jpg"}
    if path == "/api/convert":
        fields["format"] = "png"
    response = limited_env.client.post(path, headers=tenant.headers, data=fields)
    assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert response.status_code == 200, response.text
    [result] = response.json()["files"]
    assert result["filename"] == ("photo.png" if path == "/api/convert" else "photo.jpg")
    assert (result["width"], result["height"]) == (160, 120)


def test_a_form_urlencoded_source_url_job_completes(limited_env: AppEnv, origin: str) -> None:
    tenant = limited_env.new_tenant()
    response = limited_env.client.post(
        "/api/jobs", headers=tenant.headers,
        data={"sourceUrl": f"{origin}/photo.jpg", "formats": '["webp"]'})
    assert response.status_code == 200, response.text
    job = wait_for_job(limited_env.client, tenant, response.json()["jobId"])
    assert job["status"] == "completed", job
    assert job["results"][0]["format"] == "webp"


def test_a_form_urlencoded_request_without_a_source_says_what_to_send(
        limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    response = limited_env.client.post("/api/convert", headers=tenant.headers,
                                       data={"format": "png"})
    assert response.status_code == 400, response.text
    assert "sourceUrl" in response.json()["error"]


def test_another_content_type_is_told_both_that_work(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    response = limited_env.client.post("/api/jobs", headers=tenant.headers,
                                       json={"sourceUrl": "http://example.com/a.jpg"})
    assert_error(response, 400, "INVALID_REQUEST", "multipart/form-data",
                 "application/x-www-form-urlencoded", "'application/json'")
