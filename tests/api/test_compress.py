"""POST /api/compress: keep the format, shrink by quality or to a target size, strip metadata,
lossless."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests import images
from tests.api.support import Tenant, assert_error, convert_ok, output_bytes, post

ARTIST = "Ansel Adams"
COPYRIGHT = "(c) test"


@pytest.fixture(scope="module")
def fine_jpeg() -> bytes:
    """A high-quality JPEG (q 98) with EXIF: plenty to save."""
    return images.jpeg(640, 480, quality=98,
                       exif={images.EXIF_ARTIST: ARTIST, images.EXIF_COPYRIGHT: COPYRIGHT})


def compress_ok(client: TestClient, tenant: Tenant, uploads: list[tuple[str, bytes]],
                **fields: object) -> list[dict[str, object]]:
    response = post(client, "/api/compress", tenant, uploads, **fields)
    assert response.status_code == 200, response.text
    files: list[dict[str, object]] = response.json()["files"]
    return files


def test_quality_mode_keeps_the_format_and_shrinks(client: TestClient, tenant: Tenant,
                                                   fine_jpeg: bytes) -> None:
    [entry] = compress_ok(client, tenant, [("photo.jpg", fine_jpeg)], quality=60)
    assert entry["filename"] == "photo.jpg"
    assert entry["mimeType"] == "image/jpeg"
    assert entry["appliedQuality"] == 60
    assert entry["originalSize"] == len(fine_jpeg)
    assert isinstance(entry["finalSize"], int) and entry["finalSize"] < len(fine_jpeg) / 2
    assert isinstance(entry["savedPercent"], float) and entry["savedPercent"] > 50
    out = images.decode(output_bytes(client, entry))
    assert (out.format, out.size) == ("JPEG", (640, 480))
    assert images.mean_difference(images.decode(fine_jpeg).image, out.image) < 15


def test_default_quality_is_82(client: TestClient, tenant: Tenant, fine_jpeg: bytes) -> None:
    [entry] = compress_ok(client, tenant, [("photo.jpg", fine_jpeg)])
    assert entry["appliedQuality"] == 82


def test_a_jpeg_below_the_quality_comes_back_with_a_note(client: TestClient,
                                                          tenant: Tenant) -> None:
    source = images.jpeg(320, 240, quality=55)
    [entry] = compress_ok(client, tenant, [("low.jpg", source)], quality=70)
    assert entry["finalSize"] == entry["originalSize"] == len(source)
    assert entry["appliedQuality"] is None
    notes = entry["notes"]
    assert isinstance(notes, list) and "quality 55" in notes[0]
    assert output_bytes(client, entry) == source


def test_png_stays_png(client: TestClient, tenant: Tenant) -> None:
    source = images.png(200, 150)
    [entry] = compress_ok(client, tenant, [("shot.png", source)])
    assert entry["filename"] == "shot.png"
    out = images.decode(output_bytes(client, entry))
    assert (out.format, out.size) == ("PNG", (200, 150))


def test_target_size_lands_under_the_target(client: TestClient, tenant: Tenant,
                                            fine_jpeg: bytes) -> None:
    target = len(fine_jpeg) // 4
    [entry] = compress_ok(client, tenant, [("photo.jpg", fine_jpeg)], mode="target-size",
                          targetBytes=target)
    data = output_bytes(client, entry)
    assert len(data) == entry["finalSize"]
    assert len(data) <= target
    assert isinstance(entry["appliedQuality"], int) and 1 <= entry["appliedQuality"] < 98
    out = images.decode(data)
    assert (out.format, out.size) == ("JPEG", (640, 480))


def test_unreachable_target_is_422_with_the_smallest_size(client: TestClient, tenant: Tenant,
                                                          fine_jpeg: bytes) -> None:
    response = post(client, "/api/compress", tenant, [("photo.jpg", fine_jpeg)],
                    mode="target-size", targetBytes=300)
    body = assert_error(response, 422, "CONVERSION_FAILED", "photo.jpg", "300")
    smallest = body["detail"]["smallestBytes"]
    assert isinstance(smallest, int) and 300 < smallest < len(fine_jpeg)
    assert f"{smallest:,}" in body["error"]
    assert body["detail"]["filename"] == "photo.jpg"


def test_target_size_needs_target_bytes(client: TestClient, tenant: Tenant,
                                        fine_jpeg: bytes) -> None:
    response = post(client, "/api/compress", tenant, [("photo.jpg", fine_jpeg)],
                    mode="target-size")
    assert_error(response, 400, "INVALID_FIELD", "'targetBytes'")


def test_unknown_mode(client: TestClient, tenant: Tenant, fine_jpeg: bytes) -> None:
    response = post(client, "/api/compress", tenant, [("photo.jpg", fine_jpeg)], mode="best")
    assert_error(response, 400, "INVALID_FIELD", "'mode'")


def test_metadata_is_kept_unless_stripping_is_asked(client: TestClient, tenant: Tenant,
                                                    fine_jpeg: bytes) -> None:
    assert images.decode(fine_jpeg).exif[images.EXIF_ARTIST] == ARTIST
    kept, stripped = compress_ok(client, tenant, [("a.jpg", fine_jpeg), ("b.jpg", fine_jpeg)],
                                 stripMetadataValues=[False, True])
    kept_exif = images.decode(output_bytes(client, kept)).exif
    assert kept_exif.get(images.EXIF_ARTIST) == ARTIST
    stripped_image = images.decode(output_bytes(client, stripped))
    assert images.EXIF_ARTIST not in stripped_image.exif
    assert images.EXIF_COPYRIGHT not in stripped_image.exif
    assert stripped_image.size == (640, 480)


def test_strip_metadata_singular_field(client: TestClient, tenant: Tenant,
                                       fine_jpeg: bytes) -> None:
    [entry] = compress_ok(client, tenant, [("a.jpg", fine_jpeg)], stripMetadata=True,
                          quality=90)
    assert images.decode(output_bytes(client, entry)).exif == {}


def test_lossless_png_is_pixel_identical(client: TestClient, tenant: Tenant) -> None:
    source = images.png(240, 180, alpha=True)
    [entry] = compress_ok(client, tenant, [("alpha.png", source)], lossless=True)
    before, after = images.decode(source), images.decode(output_bytes(client, entry))
    assert after.format == "PNG"
    assert after.mode == before.mode == "RGBA"
    assert after.size == before.size
    assert after.image.tobytes() == before.image.tobytes()


def test_lossless_jpeg_keeps_the_pixels(client: TestClient, tenant: Tenant,
                                        fine_jpeg: bytes) -> None:
    [entry] = compress_ok(client, tenant, [("photo.jpg", fine_jpeg)], lossless=True,
                          stripMetadata=True)
    after = images.decode(output_bytes(client, entry))
    assert after.image.tobytes() == images.decode(fine_jpeg).image.tobytes()
    assert images.EXIF_ARTIST not in after.exif
    assert entry["finalSize"] < len(fine_jpeg)


def test_compress_rejects_resizing(client: TestClient, tenant: Tenant,
                                   fine_jpeg: bytes) -> None:
    response = post(client, "/api/compress", tenant, [("photo.jpg", fine_jpeg)],
                    resize="email")
    assert_error(response, 400, "INVALID_FIELD", "'resize'", "photo.jpg")


@pytest.mark.parametrize("field,value", [("format", "png"), ("formats", '["png"]')])
def test_compress_refuses_a_format(client: TestClient, tenant: Tenant, fine_jpeg: bytes,
                                   field: str, value: str) -> None:
    response = post(client, "/api/compress", tenant, [("photo.jpg", fine_jpeg)],
                    **{field: value})
    assert_error(response, 400, "INVALID_FIELD", f"'{field}'", "keeps each file's format")


def test_compress_and_convert_share_the_response_shape(client: TestClient, tenant: Tenant,
                                                       fine_jpeg: bytes) -> None:
    converted = convert_ok(client, tenant, [("photo.jpg", fine_jpeg)], format="jpg")
    response = post(client, "/api/compress", tenant, [("photo.jpg", fine_jpeg)])
    assert response.status_code == 200
    compressed = response.json()
    assert compressed.keys() == converted.keys()
    assert compressed["files"][0].keys() == converted["files"][0].keys()
