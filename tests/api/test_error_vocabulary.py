"""One error vocabulary for real-shaped files, through the API in both modes: pixel floods
declared in a header answer 413 IMAGE_TOO_LARGE before any decoder runs; password-protected
archives, PDFs and media answer 422 ENCRYPTED_FILE naming the file; formats we recognise
and do not convert answer 415 naming the format; an archive with nothing to convert says
what it holds. Every file is generated here (or is rarfile's own test data)."""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import py7zr
import pytest

from tests import images
from tests.api.support import AppEnv, assert_error, create_job, post, wait_for_job
from tests.hostile import samples

DATA = Path(__file__).resolve().parent.parent / "converters" / "data"


# --- pixel floods: real files whose headers claim billions of pixels ----------------------


def _gif_frame_beyond_the_screen() -> bytes:
    """A 32x32 GIF whose one frame, 65,535 x 1,321 at row 65,280, makes it 65,535 x 66,601
    (4.36 billion pixels) once drawn: Pillow's decompression-bomb GIF has this shape."""
    data = bytearray(samples.gif_animation(1, 32, 32))
    at = data.find(b"\x2c", 13)  # the first image descriptor
    data[at + 1:at + 9] = struct.pack("<HHHH", 0, 65_280, 65_535, 1_321)
    return bytes(data)


def _gif_bomb_header() -> bytes:
    """The 44 bytes of Pillow's own decompression-bomb GIF, written out: a 32x32 screen,
    four colours, a frame 65,535 x 1,321 at row 65,280, and no image data after its LZW code
    size. No decoder gets to the pixels; the header alone says 4.36 billion."""
    palette = bytes.fromhex("000000ff0000ffff00ffffff")
    control = bytes.fromhex("21f904c900000000")
    frame = b"\x2c" + struct.pack("<HHHH", 0, 65_280, 65_535, 1_321) + b"\x00\x8f"
    return b"GIF89a" + struct.pack("<HH", 32, 32) + b"\xf1\x03\x00" + palette + control + frame


def _gif_screen(width: int, height: int) -> bytes:
    data = bytearray(samples.gif_animation(1, 1, 1))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _pil(fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    images.picture(40, 30).save(buf, format=fmt, **options)
    return buf.getvalue()


def _jpeg_sof(width: int, height: int) -> bytes:
    data = _pil("JPEG")
    at = data.find(b"\xff\xc0")
    return data[:at + 5] + struct.pack(">HH", height, width) + data[at + 9:]


def _png_ihdr(width: int, height: int) -> bytes:
    data = bytearray(_pil("PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _webp_vp8(width: int, height: int) -> bytes:
    data = bytearray(_pil("WEBP", quality=80))
    at = data.find(b"VP8 ") + 8 + 6  # the chunk header, the frame tag and start code
    data[at:at + 4] = struct.pack("<HH", width, height)
    return bytes(data)


def _tiff_ifd(width: int, height: int) -> bytes:
    data = bytearray(_pil("TIFF"))
    (offset,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[offset:offset + 2])
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        tag = struct.unpack("<H", data[entry:entry + 2])[0]
        if tag in (256, 257):
            data[entry + 2:entry + 12] = struct.pack("<HII", 4, 1, width if tag == 256
                                                     else height)
    return bytes(data)


def _ispe(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    at = out.find(b"ispe")
    while at != -1:
        out[at + 8:at + 16] = struct.pack(">II", width, height)
        at = out.find(b"ispe", at + 4)
    return bytes(out)


FLOODS = {
    "frame-beyond-screen.gif": (_gif_frame_beyond_the_screen, "65535x66601"),
    "bomb-header.gif": (_gif_bomb_header, "65535x66601"),
    "screen.gif": (lambda: _gif_screen(65_535, 65_535), "65535x65535"),
    "sof.jpg": (lambda: _jpeg_sof(60_000, 60_000), "60000x60000"),
    "ihdr.png": (lambda: _png_ihdr(100_000, 100_000), "100000x100000"),
    "vp8.webp": (lambda: _webp_vp8(16_383, 16_383), "16383x16383"),
    "ifd.tiff": (lambda: _tiff_ifd(100_000, 100_000), "100000x100000"),
    "ispe.avif": (lambda: _ispe(_pil("AVIF"), 60_000, 60_000), "60000x60000"),
    "ispe.heic": (lambda: _ispe(_pil("HEIF"), 60_000, 60_000), "60000x60000"),
}


@pytest.mark.parametrize("name", FLOODS)
def test_a_header_declaring_a_pixel_flood_is_413(app_env: AppEnv, name: str) -> None:
    make, size = FLOODS[name]
    tenant = app_env.new_tenant()
    response = post(app_env.client, "/api/convert", tenant, [(name, make())], format="png")
    body = assert_error(response, 413, "IMAGE_TOO_LARGE", name, size, "CONVERTLY_MAX_PIXELS")
    assert body["detail"]["maxPixels"] == app_env.settings.max_pixels


@pytest.mark.parametrize("target", ["webp", "mp4", "pdf", "svg"])
def test_a_gif_flood_is_413_whatever_the_target(app_env: AppEnv, target: str) -> None:
    tenant = app_env.new_tenant()
    response = post(app_env.client, "/api/convert", tenant,
                    [("bomb.gif", _gif_bomb_header())], format=target)
    assert_error(response, 413, "IMAGE_TOO_LARGE", "bomb.gif", "65535x66601")


# --- password-protected files -------------------------------------------------------------


def _encrypted_7z(directory: Path) -> bytes:
    path = directory / "secret.7z"
    with py7zr.SevenZipFile(path, "w", password="hunter2") as archive:
        archive.writestr(b"the secret", "secret.txt")
    return path.read_bytes()


def _encrypted_zip(directory: Path) -> bytes:
    (directory / "secret.txt").write_text("the secret")
    subprocess.run(["zip", "-q", "-P", "hunter2", "secret.zip", "secret.txt"],
                   cwd=directory, check=True, timeout=30)
    return (directory / "secret.zip").read_bytes()


def _encrypted_pdf(directory: Path) -> bytes:
    plain = directory / "plain.pdf"
    images.picture(40, 30).save(plain, format="PDF")
    locked = directory / "locked.pdf"
    subprocess.run(["gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-sDEVICE=pdfwrite",
                    "-sOwnerPassword=owner", "-sUserPassword=user",
                    f"-sOutputFile={locked}", str(plain)], check=True, timeout=60)
    return locked.read_bytes()


def _encrypted_mp4(directory: Path) -> bytes:
    """An MP4 under Common Encryption (cenc-aes-ctr), as DRM-protected downloads are."""
    plain = directory / "plain.mp4"
    plain.write_bytes(samples.ffmpeg(samples._MEDIA["mp4"]))
    locked = directory / "locked.mp4"
    key = "00112233445566778899aabbccddeeff"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(plain), "-c", "copy",
                    "-encryption_scheme", "cenc-aes-ctr", "-encryption_key", key,
                    "-encryption_kid", key, str(locked)], check=True, timeout=60,
                   stdin=subprocess.DEVNULL)
    return locked.read_bytes()


ENCRYPTED = {
    "secret.7z": (_encrypted_7z, "zip"),
    "secret.zip": (_encrypted_zip, "tar"),
    "psw.rar": (lambda _: (DATA / "rar5-psw.rar").read_bytes(), "zip"),
    "hpsw.rar": (lambda _: (DATA / "rar5-hpsw.rar").read_bytes(), "zip"),
    "locked.pdf": (_encrypted_pdf, "png"),
    "locked.mp4": (_encrypted_mp4, "mp3"),
}


@pytest.mark.parametrize("name", ENCRYPTED)
def test_a_password_protected_file_is_422_encrypted_naming_it(
        app_env: AppEnv, tmp_path: Path, name: str) -> None:
    make, target = ENCRYPTED[name]
    tenant = app_env.new_tenant()
    response = post(app_env.client, "/api/convert", tenant, [(name, make(tmp_path))],
                    format=target)
    body = assert_error(response, 422, "ENCRYPTED_FILE", name, "password-protected"
                        if not name.endswith(".mp4") else "encrypted")
    assert body["detail"]["filename"] == name


def test_a_password_protected_file_fails_its_job_file_with_the_same_code(
        app_env: AppEnv, tmp_path: Path) -> None:
    tenant = app_env.new_tenant()
    job_id = create_job(app_env.client, tenant, [("secret.7z", _encrypted_7z(tmp_path)),
                                                 ("photo.jpg", images.jpeg(40, 30))],
                        format="zip")
    job = wait_for_job(app_env.client, tenant, job_id)
    locked, photo = job["results"]
    assert locked["errorCode"] == "ENCRYPTED_FILE", locked
    assert locked["filename"] == "secret.7z" and "password-protected" in locked["error"]
    assert photo["errorCode"] is None, photo


# --- formats we know and do not convert ---------------------------------------------------


def _wma(directory: Path) -> bytes:
    out = directory / "voice.wma"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=8000:duration=0.5", "-c:a", "wmav2",
                    str(out)], check=True, timeout=60, stdin=subprocess.DEVNULL)
    return out.read_bytes()


def _psd(_: Path) -> bytes:
    # The PSD file header (version 1, 3 channels, 30 x 40, 8 bits, RGB) and empty sections.
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 30, 40, 8, 3)
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + b"\0" * 3600


def _xcf(_: Path) -> bytes:
    return b"gimp xcf v011\0" + struct.pack(">III", 40, 30, 0) + b"\0" * 64


def _djvu(_: Path) -> bytes:
    return b"AT&TFORM" + struct.pack(">I", 40) + b"DJVUINFO" + struct.pack(">I", 10) + b"\0" * 32


def _realmedia(_: Path) -> bytes:
    return b".RMF" + struct.pack(">IHII", 18, 0, 0, 4) + b"PROP" + b"\0" * 60


KNOWN = {
    "voice.wma": (_wma, "Windows Media"),
    "layers.psd": (_psd, "Photoshop (PSD)"),
    "layers.xcf": (_xcf, "GIMP image (XCF)"),
    "scan.djvu": (_djvu, "DjVu"),
    "clip.rm": (_realmedia, "RealMedia"),
}


@pytest.mark.parametrize("name", KNOWN)
def test_a_known_format_we_do_not_convert_is_415_naming_it(
        app_env: AppEnv, tmp_path: Path, name: str) -> None:
    make, label = KNOWN[name]
    tenant = app_env.new_tenant()
    response = post(app_env.client, "/api/convert", tenant, [(name, make(tmp_path))],
                    format="png")
    body = assert_error(response, 415, "UNSUPPORTED_MEDIA", name, label,
                        "which this server does not convert")
    assert "cannot tell" not in body["error"]
    assert label in body["detail"]["format"]


# --- an archive with nothing to convert ---------------------------------------------------


def test_an_archive_of_text_files_says_what_it_holds_and_what_to_do(app_env: AppEnv) -> None:
    tenant = app_env.new_tenant()
    response = post(app_env.client, "/api/convert", tenant,
                    [("texts.rar", (DATA / "rar5-crc.rar").read_bytes())], format="png")
    body = assert_error(response, 415, "UNSUPPORTED_CONVERSION", "texts.rar")
    assert body["error"] == (
        "texts.rar: The RAR archive holds 2 text files, and none of them can be converted "
        "to png. Send an archive of images, audio, video or PDFs, or ask for an archive "
        "format (zip, 7z, tar, gz, bz2, xz) to repack it.")


def test_a_flood_inside_an_archive_is_named_in_the_notes(app_env: AppEnv,
                                                         tmp_path: Path) -> None:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bomb.gif", _gif_bomb_header())
        zf.writestr("fine.png", _pil("PNG"))
    tenant = app_env.new_tenant()
    response = post(app_env.client, "/api/convert", tenant, [("mixed.zip", buf.getvalue())],
                    format="webp")
    assert response.status_code == 200, response.text
    [result] = response.json()["files"]
    assert any("bomb.gif" in note and "CONVERTLY_MAX_PIXELS" in note
               for note in result["notes"]), result["notes"]


def test_the_image_kinds_round_trip_below_the_limit(app_env: AppEnv) -> None:
    """The header reader does not refuse ordinary files of any kind it reads."""
    tenant = app_env.new_tenant()
    uploads = [(f"ok.{ext}", _pil(fmt)) for ext, fmt in
               (("gif", "GIF"), ("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"),
                ("tiff", "TIFF"), ("avif", "AVIF"), ("heic", "HEIF"), ("bmp", "BMP"))]
    response = post(app_env.client, "/api/convert", tenant, uploads, format="png")
    assert response.status_code == 200, response.text
    for result in response.json()["files"]:
        assert (result["width"], result["height"]) == (40, 30), result
