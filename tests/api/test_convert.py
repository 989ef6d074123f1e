"""POST /api/convert: every output format, resize presets, per-file arrays, validation,
stored outputs behind signed links."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from convertly.signing import Grant, sign
from tests import images
from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    convert_ok,
    download,
    output_bytes,
    post,
)

FORMATS = ["jpg", "png", "webp", "avif", "tiff", "gif", "heif"]
LOSSY = {"jpg", "webp", "avif", "heif"}
FILE_KEYS = {"filename", "originalSize", "finalSize", "savedPercent", "mimeType",
             "downloadUrl", "appliedQuality", "storedFileId"}


def check_entry(client: TestClient, entry: dict[str, Any], *, original: bytes, fmt: str,
                filename: str) -> images.Decoded:
    """The entry has Convertly's shape and its output decodes as `fmt`; returns it decoded."""
    assert entry.keys() >= FILE_KEYS
    data = output_bytes(client, entry)
    assert entry["filename"] == filename
    assert entry["originalSize"] == len(original)
    assert entry["finalSize"] == len(data)
    expected_saving = round(100 * (len(original) - len(data)) / len(original), 2)
    assert entry["savedPercent"] == pytest.approx(expected_saving, abs=0.01)
    assert entry["mimeType"] == images.MIME_TYPES[fmt]
    decoded = images.decode(data)
    assert decoded.format == images.PIL_FORMATS[fmt]
    return decoded


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("source", ["jpeg", "png"])
def test_convert_to_every_image_format(client: TestClient, tenant: Tenant, source: str,
                                       fmt: str) -> None:
    original = images.jpeg(320, 240) if source == "jpeg" else images.png(320, 240)
    name = "photo.jpg" if source == "jpeg" else "photo.png"

    body = convert_ok(client, tenant, [(name, original)], format=fmt)

    assert body["storage"]["saved"] is False
    assert isinstance(body["storage"]["notice"], str) and body["storage"]["notice"]
    entry = body["files"][0]
    assert entry["downloadUrl"].startswith("data:")
    assert entry["storedFileId"] is None
    assert entry["appliedQuality"] == (82 if fmt in LOSSY else None)
    decoded = check_entry(client, entry, original=original, fmt=fmt,
                          filename=f"photo.{images.EXTENSIONS[fmt]}")
    assert decoded.size == (320, 240)
    # The picture survived the trip (a blank or scrambled output is far above this).
    assert images.mean_difference(images.decode(original).image, decoded.image) < 20


def test_file_field_is_accepted_like_files(client: TestClient, tenant: Tenant,
                                           jpeg_bytes: bytes) -> None:
    response = post(client, "/api/convert", tenant, [("one.jpg", jpeg_bytes)], field="file",
                    format="png")
    assert response.status_code == 200, response.text
    entry = response.json()["files"][0]
    decoded = check_entry(client, entry, original=jpeg_bytes, fmt="png", filename="one.png")
    assert decoded.size == (320, 240)


def test_directories_in_upload_names_are_dropped(client: TestClient, tenant: Tenant,
                                                 jpeg_bytes: bytes) -> None:
    body = convert_ok(client, tenant, [("../../etc/photo.jpg", jpeg_bytes),
                                       ("C:\\Users\\me\\shot.jpg", jpeg_bytes)], format="gif")
    assert [f["filename"] for f in body["files"]] == ["photo.gif", "shot.gif"]


def test_format_aliases_and_case(client: TestClient, tenant: Tenant, png_bytes: bytes) -> None:
    body = convert_ok(client, tenant, [("a.png", png_bytes), ("b.png", png_bytes)],
                      formats=["JPEG", ".tif"])
    assert [f["mimeType"] for f in body["files"]] == ["image/jpeg", "image/tiff"]


def test_several_files_in_one_request_keep_their_order(client: TestClient,
                                                       tenant: Tenant) -> None:
    uploads = [(f"img{i}.jpg", images.jpeg(100 + 20 * i, 80, seed=i)) for i in range(4)]
    body = convert_ok(client, tenant, uploads, format="webp")
    widths = [images.decode(output_bytes(client, f)).width for f in body["files"]]
    assert widths == [100, 120, 140, 160]
    assert [f["filename"] for f in body["files"]] == [f"img{i}.webp" for i in range(4)]


# --- resize presets ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_jpeg() -> bytes:
    """2400x1200: larger than every preset's box, so each one has to act."""
    return images.jpeg(2400, 1200, noise=0.03)


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({"resize": "original"}, (2400, 1200)),
        ({}, (2400, 1200)),  # resize omitted means original
        ({"resize": "website"}, (1920, 960)),
        ({"resize": "email"}, (600, 300)),
        ({"resize": "instagram"}, (1080, 1080)),
        ({"resize": "linkedin"}, (1200, 627)),
        ({"resize": "ecommerce"}, (2000, 2000)),
        ({"resize": "square"}, (1080, 1080)),
        ({"resize": "square", "resizeWidth": 300}, (300, 300)),
        ({"resize": "width", "resizeWidth": 500}, (500, 250)),
        ({"resize": "height", "resizeHeight": 300}, (600, 300)),
    ],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_resize_presets(client: TestClient, tenant: Tenant, wide_jpeg: bytes,
                        fields: dict[str, Any], size: tuple[int, int]) -> None:
    body = convert_ok(client, tenant, [("wide.jpg", wide_jpeg)], format="jpg", **fields)
    entry = body["files"][0]
    decoded = images.decode(output_bytes(client, entry))
    assert decoded.size == size
    assert (entry["width"], entry["height"]) == size


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({"resize": "website"}, (400, 200)),
        ({"resize": "email"}, (400, 200)),
        ({"resize": "width", "resizeWidth": 800}, (400, 200)),
        ({"resize": "instagram"}, (200, 200)),
        ({"resize": "linkedin"}, (383, 200)),
    ],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_presets_never_enlarge_small_images(client: TestClient, tenant: Tenant,
                                             fields: dict[str, Any],
                                             size: tuple[int, int]) -> None:
    body = convert_ok(client, tenant, [("small.jpg", images.jpeg(400, 200))], format="png",
                      **fields)
    assert images.decode(output_bytes(client, body["files"][0])).size == size


def test_ecommerce_pads_on_white(client: TestClient, tenant: Tenant) -> None:
    body = convert_ok(client, tenant, [("small.jpg", images.jpeg(400, 200))], format="png",
                      resize="ecommerce")
    image = images.decode(output_bytes(client, body["files"][0])).image.convert("RGB")
    assert image.size == (2000, 2000)
    # Fitted to 2000x1000 and centred: white bands above and below, the picture between.
    assert image.getpixel((1000, 100)) == (255, 255, 255)
    assert image.getpixel((1000, 1900)) == (255, 255, 255)
    darkest, _ = image.crop((0, 600, 2000, 1400)).convert("L").getextrema()
    assert darkest < 200


# --- per-file arrays --------------------------------------------------------------------


def test_per_file_arrays_apply_to_their_own_file(client: TestClient, tenant: Tenant) -> None:
    uploads = [
        ("a.jpg", images.jpeg(400, 300, seed=1)),
        ("b.png", images.png(400, 300, seed=2)),
        ("c.jpg", images.jpeg(400, 300, seed=3)),
    ]
    body = convert_ok(
        client, tenant, uploads,
        formats=["png", "webp", "jpg"],
        compressions=[90, 40, 30],
        resizes=["width", "original", "height"],
        resizeWidths=[200, None, None],
        resizeHeights=[None, None, 100],
        autoOrients=[True, True, False],
        monos=[False, False, False],
    )
    a, b, c = body["files"]
    assert images.decode(output_bytes(client, a)).size == (200, 150)
    assert a["mimeType"] == "image/png" and a["appliedQuality"] is None
    assert images.decode(output_bytes(client, b)).size == (400, 300)
    assert b["mimeType"] == "image/webp" and b["appliedQuality"] == 40
    assert images.decode(output_bytes(client, c)).size == (133, 100)
    assert c["mimeType"] == "image/jpeg" and c["appliedQuality"] == 30


def test_compressions_array_sets_quality_per_file(client: TestClient, tenant: Tenant) -> None:
    photo = images.jpeg(400, 300, quality=97)
    body = convert_ok(client, tenant, [("hi.jpg", photo), ("lo.jpg", photo)], format="jpg",
                      compressions=[95, 20])
    high, low = body["files"]
    assert (high["appliedQuality"], low["appliedQuality"]) == (95, 20)
    assert high["finalSize"] > 2 * low["finalSize"]
    source = images.decode(photo).image
    assert images.mean_difference(source, images.decode(output_bytes(client, high)).image) < \
        images.mean_difference(source, images.decode(output_bytes(client, low)).image)


def test_auto_orients_array(client: TestClient, tenant: Tenant) -> None:
    # Stored 300x200, EXIF orientation 6: upright it is 200x300.
    rotated = images.jpeg(300, 200, exif={images.EXIF_ORIENTATION: 6})
    body = convert_ok(client, tenant, [("r1.jpg", rotated), ("r2.jpg", rotated)],
                      format="png", autoOrients=[True, False])
    upright, as_stored = (images.decode(output_bytes(client, f)) for f in body["files"])
    assert upright.size == (200, 300)
    assert as_stored.size == (300, 200)


def test_auto_orient_is_the_default(client: TestClient, tenant: Tenant) -> None:
    rotated = images.jpeg(300, 200, exif={images.EXIF_ORIENTATION: 6})
    body = convert_ok(client, tenant, [("r.jpg", rotated)], format="webp", resize="width",
                      resizeWidth=100)
    assert images.decode(output_bytes(client, body["files"][0])).size == (100, 150)


def test_singular_resize_width_applies_to_every_file(client: TestClient,
                                                     tenant: Tenant) -> None:
    uploads = [("a.jpg", images.jpeg(400, 200)), ("b.jpg", images.jpeg(300, 300))]
    body = convert_ok(client, tenant, uploads, format="png", resize="width", resizeWidth=100)
    sizes = [images.decode(output_bytes(client, f)).size for f in body["files"]]
    assert sizes == [(100, 50), (100, 100)]


ARRAY_FIELDS = {
    "formats": ["png", "png", "png"],
    "compressions": [80, 80, 80],
    "resizes": ["original", "original", "original"],
    "resizeWidths": [None, None, None],
    "resizeHeights": [None, None, None],
    "autoOrients": [True, True, True],
    "monos": [False, False, False],
}


@pytest.mark.parametrize("field", sorted(ARRAY_FIELDS))
def test_array_of_wrong_length_names_field_and_counts(client: TestClient, tenant: Tenant,
                                                      jpeg_bytes: bytes, field: str) -> None:
    response = post(client, "/api/convert", tenant, [("a.jpg", jpeg_bytes),
                                                     ("b.jpg", jpeg_bytes)],
                    format="png", **{field: ARRAY_FIELDS[field]})
    body = assert_error(response, 400, "ARRAY_LENGTH_MISMATCH", f"'{field}'", "3", "2")
    assert body["detail"] == {"field": field, "entries": 3, "files": 2}


@pytest.mark.parametrize("field", sorted(ARRAY_FIELDS))
def test_malformed_json_array_names_field(client: TestClient, tenant: Tenant,
                                          jpeg_bytes: bytes, field: str) -> None:
    response = post(client, "/api/convert", tenant, [("a.jpg", jpeg_bytes)], format="png",
                    **{field: '["png",'})
    body = assert_error(response, 400, "INVALID_FIELD", f"'{field}'", "JSON")
    assert body["detail"]["field"] == field


def test_json_that_is_not_an_array_is_rejected(client: TestClient, tenant: Tenant,
                                               jpeg_bytes: bytes) -> None:
    response = post(client, "/api/convert", tenant, [("a.jpg", jpeg_bytes)],
                    formats=json.dumps({"0": "png"}))
    assert_error(response, 400, "INVALID_FIELD", "'formats'", "array")


@pytest.mark.parametrize(
    ("fields", "field", "file_index"),
    [
        ({"format": "bmp"}, "format", None),
        ({"formats": ["png", "mpeg2"]}, "formats", 1),
        ({"format": "png", "resize": "huge"}, "resize", None),
        ({"format": "png", "resizes": ["original", "poster"]}, "resizes", 1),
        ({"format": "png", "compression": "0"}, "compression", None),
        ({"format": "png", "compressions": [82, 0]}, "compressions", 1),
        ({"format": "png", "compressions": [101, 82]}, "compressions", 0),
        ({"format": "png", "compressions": [82, "abc"]}, "compressions", 1),
        ({"format": "png", "compression": "abc"}, "compression", None),
        ({"format": "png", "compression": "101"}, "compression", None),
        ({"format": "png", "resize": "width", "resizeWidth": "0"}, "resizeWidth", None),
        ({"format": "png", "resizes": ["original", "width"]}, "resizeWidth", 1),
        ({"format": "png", "resize": "height"}, "resizeHeight", 0),
        ({"format": "png", "autoOrients": [True, "sideways"]}, "autoOrients", 1),
    ],
)
def test_invalid_values_name_field_and_file(client: TestClient, tenant: Tenant,
                                            jpeg_bytes: bytes, fields: dict[str, Any],
                                            field: str, file_index: int | None) -> None:
    response = post(client, "/api/convert", tenant, [("a.jpg", jpeg_bytes),
                                                     ("b.jpg", jpeg_bytes)], **fields)
    body = assert_error(response, 400, "INVALID_FIELD", f"'{field}'")
    assert body["detail"]["field"] == field
    if file_index is not None:
        assert f"(file {file_index + 1})" in body["error"]
        assert body["detail"]["fileIndex"] == file_index


def test_resize_width_without_resize_width_value(client: TestClient, tenant: Tenant,
                                                 jpeg_bytes: bytes) -> None:
    response = post(client, "/api/convert", tenant, [("a.jpg", jpeg_bytes)], format="png",
                    resize="width")
    assert_error(response, 400, "INVALID_FIELD", "'resizeWidth'", "width")


def test_missing_format(client: TestClient, tenant: Tenant, jpeg_bytes: bytes) -> None:
    response = post(client, "/api/convert", tenant, [("a.jpg", jpeg_bytes)], resize="email")
    assert_error(response, 400, "INVALID_FIELD", "'format'")


def test_no_files(client: TestClient, tenant: Tenant) -> None:
    response = client.post("/api/convert", headers=tenant.headers, data={"format": "png"},
                           files={"note": (None, "x")})
    assert_error(response, 400, "INVALID_FIELD", "'files'")


def test_body_that_is_not_multipart(client: TestClient, tenant: Tenant) -> None:
    response = client.post("/api/convert", headers=tenant.headers, json={"format": "png"})
    assert_error(response, 400, "INVALID_REQUEST", "multipart/form-data")


def test_a_source_url_on_this_network_is_refused_by_default(client: TestClient,
                                                             tenant: Tenant) -> None:
    response = client.post("/api/convert", headers=tenant.headers,
                           files={"sourceUrl": (None, "http://127.0.0.1:9/a.jpg"),
                                  "format": (None, "png")})
    assert_error(response, 400, "INVALID_FIELD", "'sourceUrl'", "not a public address",
                 "CONVERTLY_FETCH_ALLOW_PRIVATE")


# --- storage and signed links -----------------------------------------------------------


def test_save_to_storage_gives_a_signed_link(client: TestClient, tenant: Tenant,
                                             jpeg_bytes: bytes) -> None:
    body = convert_ok(client, tenant, [("keep.jpg", jpeg_bytes)], format="webp",
                      saveToStorage=True)
    assert body["storage"]["saved"] is True
    entry = body["files"][0]
    assert entry["storedFileId"].startswith("file_")
    assert entry["downloadUrl"].startswith("http://testserver/api/download/")
    response = download(client, entry["downloadUrl"])
    assert response.headers["content-type"] == "image/webp"
    assert "keep.webp" in response.headers["content-disposition"]
    assert len(response.content) == entry["finalSize"]
    decoded = check_entry(client, entry, original=jpeg_bytes, fmt="webp",
                          filename="keep.webp")
    assert decoded.size == (320, 240)


def test_download_names_a_non_ascii_file(client: TestClient, tenant: Tenant,
                                         jpeg_bytes: bytes) -> None:
    body = convert_ok(client, tenant, [("Été à Zürich.jpg", jpeg_bytes)], format="png",
                      saveToStorage=True)
    entry = body["files"][0]
    assert entry["filename"] == "Été à Zürich.png"
    response = download(client, entry["downloadUrl"])
    assert "filename*=utf-8''%C3%89t%C3%A9%20%C3%A0%20Z%C3%BCrich.png" in \
        response.headers["content-disposition"]
    assert images.decode(response.content).format == "PNG"


def test_head_on_a_signed_link(client: TestClient, tenant: Tenant, jpeg_bytes: bytes) -> None:
    body = convert_ok(client, tenant, [("keep.jpg", jpeg_bytes)], format="png",
                      saveToStorage=True)
    entry = body["files"][0]
    response = client.head(entry["downloadUrl"])
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == entry["finalSize"]


def _tamper(token: str) -> str:
    payload, _, mac = token.partition(".")
    swapped = "A" if payload[5] != "A" else "B"
    return f"{payload[:5]}{swapped}{payload[6:]}.{mac}"


def test_tampered_link_is_forbidden(client: TestClient, tenant: Tenant,
                                    jpeg_bytes: bytes) -> None:
    body = convert_ok(client, tenant, [("keep.jpg", jpeg_bytes)], format="png",
                      saveToStorage=True)
    url = body["files"][0]["downloadUrl"]
    base, _, token = url.rpartition("/")
    assert_error(client.get(f"{base}/{_tamper(token)}"), 403, "FORBIDDEN", "invalid")
    payload, _, mac = token.partition(".")
    assert_error(client.get(f"{base}/{payload}.{mac[:-2]}"), 403, "FORBIDDEN")
    assert_error(client.get(f"{base}/{payload}"), 403, "FORBIDDEN")
    assert_error(client.get(f"{base}/not-a-token"), 403, "FORBIDDEN")
    # The genuine link still works.
    download(client, url)


def test_expired_link_is_forbidden(app_env: AppEnv, client: TestClient, tenant: Tenant,
                                   jpeg_bytes: bytes) -> None:
    body = convert_ok(client, tenant, [("keep.jpg", jpeg_bytes)], format="png",
                      saveToStorage=True)
    record = app_env.services.files.get(body["files"][0]["storedFileId"], tenant.tenant)
    assert record is not None
    expired = Grant(key=record.key, tenant=tenant.tenant, filename="keep.png",
                    mime_type="image/png", expires=int(time.time()) - 5)
    token = sign(expired, app_env.services.secret)
    assert_error(client.get(f"/api/download/{token}"), 403, "FORBIDDEN", "expired")


def test_link_to_a_removed_file_is_404(app_env: AppEnv, client: TestClient, tenant: Tenant,
                                       jpeg_bytes: bytes) -> None:
    body = convert_ok(client, tenant, [("gone.jpg", jpeg_bytes)], format="png",
                      saveToStorage=True)
    entry = body["files"][0]
    record = app_env.services.files.get(entry["storedFileId"], tenant.tenant)
    assert record is not None
    app_env.services.storage.delete(record.key)
    assert_error(client.get(entry["downloadUrl"]), 404, "NOT_FOUND", "no longer exists")


def test_large_output_comes_back_as_a_temporary_link(limited_env: AppEnv) -> None:
    client = limited_env.client
    tenant = limited_env.new_tenant()
    tiny = images.png(4, 4)
    photo = images.jpeg(160, 120)
    body = convert_ok(client, tenant, [("tiny.png", tiny), ("photo.jpg", photo)],
                      format="png")
    assert body["storage"]["saved"] is False
    assert "1000 bytes" in body["storage"]["notice"]
    small, large = body["files"]
    # Under data_url_max_bytes (1000): inline.
    assert small["downloadUrl"].startswith("data:")
    assert images.decode(output_bytes(client, small)).size == (4, 4)
    # Over it: a short-lived stored copy behind a signed link, not a stored file.
    assert large["finalSize"] > 1000
    assert large["downloadUrl"].startswith("http://testserver/api/download/")
    assert large["storedFileId"] is None
    decoded = images.decode(download(client, large["downloadUrl"]).content)
    assert (decoded.format, decoded.size) == ("PNG", (160, 120))


def test_nothing_is_left_in_the_spool_after_a_conversion(app_env: AppEnv, client: TestClient,
                                                         tenant: Tenant,
                                                         jpeg_bytes: bytes) -> None:
    # The spool is removed after the answer is sent; the test client waits for that too.
    convert_ok(client, tenant, [("a.jpg", jpeg_bytes), ("b.jpg", jpeg_bytes)], format="png")
    spool = app_env.settings.data_dir / "tmp"
    assert not [p.name for p in spool.iterdir() if p.name.startswith("upload-")]
