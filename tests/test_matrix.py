"""Every (source kind, target format) pair the registry offers, converted for real and checked
by decoding the output: what the bytes are (sniffed), and that a decoder reads them (pixels,
pages, streams and duration, archive entries). The pairs come from the registry itself, so a
converter registered later is walked here without editing this file.

The samples are small real files made here: images with Pillow, a PDF with Pillow, audio and
video with ffmpeg's test sources, archives holding a PNG. The checks run through the service's
own `convert_path`, the function both executors call."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pillow_heif
import py7zr
import pypdfium2
import pytest
import pyvips
from PIL import Image

from convertly.converters.builtin import default_registry
from convertly.errors import UnsupportedConversionError
from convertly.models import FileSpec, JobType, OutputFormat, extension_for
from convertly.pipeline import convert_path
from convertly.service import Services, build_services
from convertly.settings import Settings
from convertly.sniff import Kind, sniff_file
from tests import images

pillow_heif.register_heif_opener()

REGISTRY = default_registry()
PAIRS = sorted((kind, target) for kind, targets in REGISTRY.matrix().items()
               for target in targets)
SIZE = (96, 64)  # every sample image and video frame

# What a target format's bytes must sniff as.
EXPECTED_KIND: dict[OutputFormat, Kind] = {
    OutputFormat.JPG: Kind.JPEG, OutputFormat.PNG: Kind.PNG, OutputFormat.WEBP: Kind.WEBP,
    OutputFormat.AVIF: Kind.AVIF, OutputFormat.TIFF: Kind.TIFF, OutputFormat.GIF: Kind.GIF,
    OutputFormat.HEIF: Kind.HEIF, OutputFormat.SVG: Kind.SVG, OutputFormat.PDF: Kind.PDF,
    OutputFormat.MP4: Kind.MP4, OutputFormat.WEBM: Kind.WEBM, OutputFormat.MOV: Kind.MOV,
    OutputFormat.MP3: Kind.MP3, OutputFormat.WAV: Kind.WAV, OutputFormat.OGG: Kind.OGG,
    OutputFormat.M4A: Kind.M4A, OutputFormat.FLAC: Kind.FLAC, OutputFormat.ZIP: Kind.ZIP,
    OutputFormat.TAR: Kind.TAR, OutputFormat.TGZ: Kind.GZIP, OutputFormat.SEVEN_Z: Kind.SEVEN_Z,
    OutputFormat.GZ: Kind.GZIP, OutputFormat.BZ2: Kind.BZIP2, OutputFormat.XZ: Kind.XZ,
    OutputFormat.RAR: Kind.RAR,
}
AUDIO = {OutputFormat.MP3, OutputFormat.WAV, OutputFormat.OGG, OutputFormat.M4A,
         OutputFormat.FLAC}
VIDEO = {OutputFormat.MP4, OutputFormat.WEBM, OutputFormat.MOV}
RASTER = {OutputFormat.JPG, OutputFormat.PNG, OutputFormat.WEBP, OutputFormat.AVIF,
          OutputFormat.TIFF, OutputFormat.GIF, OutputFormat.HEIF}
CODECS: dict[OutputFormat, tuple[str | None, str | None]] = {  # (video, audio) codec
    OutputFormat.MP4: ("h264", "aac"), OutputFormat.MOV: ("h264", "aac"),
    OutputFormat.WEBM: ("vp9", "opus"), OutputFormat.MP3: (None, "mp3"),
    OutputFormat.WAV: (None, "pcm_s16le"), OutputFormat.OGG: (None, "vorbis"),
    OutputFormat.M4A: (None, "aac"), OutputFormat.FLAC: (None, "flac"),
}
MEDIA_SECONDS = 1.0


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=60)


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)], check=True, capture_output=True, timeout=30,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


# --- samples ----------------------------------------------------------------------------


def _image(fmt: str, **options: Any) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        images.picture(*SIZE, noise=0.05).save(path, fmt, **options)
    return make


def _video(*codec: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate=10:"
               f"duration={MEDIA_SECONDS}", "-f", "lavfi", "-i",
               f"sine=frequency=440:duration={MEDIA_SECONDS}", "-shortest", *codec, str(path))
    return make


def _audio(*codec: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={MEDIA_SECONDS}", *codec,
               str(path))
    return make


def _png_bytes() -> bytes:
    return images.encode(images.picture(*SIZE, noise=0.05), "PNG")


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pictures/a.png", _png_bytes())


def _tar(mode: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = _png_bytes()
        with tarfile.open(path, mode) as tf:
            info = tarfile.TarInfo("pictures/a.png")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return make


def _seven_z(path: Path) -> None:
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(_png_bytes(), "pictures/a.png")


def _compressed(opener: Callable[..., Any]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with opener(path, "wb") as fh:
            fh.write(_png_bytes())
    return make


def _svg(path: Path) -> None:
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE[0]}" height="{SIZE[1]}">'
        '<rect width="100%" height="100%" fill="#2050d0"/>'
        '<circle cx="48" cy="32" r="20" fill="#e03020"/></svg>'
    )


def _pdf(path: Path) -> None:
    images.picture(*SIZE, noise=0.05).save(path, "PDF", resolution=72)


def _rar(path: Path) -> None:
    found = sorted((Path(__file__).parent / "converters" / "data").glob("*.rar"))
    if not found:
        pytest.skip("no RAR sample in tests/converters/data")
    shutil.copyfile(found[0], path)


SAMPLES: dict[Kind, Callable[[Path], None]] = {
    Kind.JPEG: _image("JPEG", quality=90), Kind.PNG: _image("PNG"),
    Kind.GIF: _image("GIF"), Kind.WEBP: _image("WEBP"), Kind.TIFF: _image("TIFF"),
    Kind.BMP: _image("BMP"), Kind.AVIF: _image("AVIF"), Kind.HEIF: _image("HEIF"),
    Kind.SVG: _svg, Kind.PDF: _pdf,
    Kind.ZIP: _zip, Kind.TAR: _tar("w"), Kind.GZIP: _tar("w:gz"),
    Kind.BZIP2: _compressed(bz2.open), Kind.XZ: _compressed(lzma.open),
    Kind.SEVEN_Z: _seven_z, Kind.RAR: _rar,
    Kind.MP4: _video("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mp4"),
    Kind.MOV: _video("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mov"),
    Kind.WEBM: _video("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                      "-c:a", "libopus", "-f", "webm"),
    Kind.MP3: _audio("-c:a", "libmp3lame", "-f", "mp3"),
    Kind.WAV: _audio("-c:a", "pcm_s16le", "-f", "wav"),
    Kind.OGG: _audio("-c:a", "libvorbis", "-f", "ogg"),
    Kind.FLAC: _audio("-c:a", "flac", "-f", "flac"),
    Kind.M4A: _audio("-c:a", "aac", "-f", "ipod"),
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[Kind, Path]:
    root = tmp_path_factory.mktemp("samples")
    made = {}
    for kind, make in SAMPLES.items():
        path = root / f"sample-{kind.value}"
        try:
            make(path)
        except pytest.skip.Exception:
            continue
        assert sniff_file(path).kind == kind.value, f"the {kind} sample sniffs as another kind"
        made[kind] = path
    return made


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), max_pdf_pages=20)
    yield build_services(settings)


def test_every_kind_has_a_sample_and_every_format_a_check() -> None:
    assert set(SAMPLES) == set(Kind)
    assert set(EXPECTED_KIND) == set(OutputFormat)


def test_every_output_format_is_reachable() -> None:
    reachable = {target for _, target in PAIRS}
    assert reachable >= set(OutputFormat) - {OutputFormat.RAR}


# --- output checks ----------------------------------------------------------------------


def check_output(path: Path, target: OutputFormat, source: Kind) -> None:
    kind = Kind(sniff_file(path).kind)
    assert kind is EXPECTED_KIND[target], f"{target} output sniffs as {kind}"
    if target in RASTER:
        with Image.open(path) as image:
            image.load()
            assert image.width > 0 and image.height > 0
    elif target is OutputFormat.SVG:
        rendered = pyvips.Image.svgload(str(path))
        assert rendered.width > 0 and rendered.height > 0
    elif target is OutputFormat.PDF:
        pdf = pypdfium2.PdfDocument(path)
        try:
            assert len(pdf) >= 1
            width, height = pdf[0].get_size()
            assert width > 0 and height > 0
        finally:
            pdf.close()
    elif target in AUDIO or target in VIDEO:
        _check_media(path, target, source)
    elif target is OutputFormat.ZIP:
        with zipfile.ZipFile(path) as zf:
            assert zf.testzip() is None and zf.namelist()
    elif target in (OutputFormat.TAR, OutputFormat.TGZ):
        with tarfile.open(path) as tf:
            assert tf.getnames()
    elif target is OutputFormat.SEVEN_Z:
        with py7zr.SevenZipFile(path) as archive:
            assert archive.getnames() and archive.testzip() is None
    elif target is OutputFormat.GZ:
        assert gzip.decompress(path.read_bytes())
    elif target is OutputFormat.BZ2:
        assert bz2.decompress(path.read_bytes())
    elif target is OutputFormat.XZ:
        assert lzma.decompress(path.read_bytes())


def _check_media(path: Path, target: OutputFormat, source: Kind) -> None:
    probe = ffprobe(path)
    streams = {s["codec_type"]: s for s in probe["streams"]}
    video_codec, audio_codec = CODECS[target]
    if video_codec is not None:
        assert streams["video"]["codec_name"] == video_codec
        assert streams["video"]["width"] > 0
    else:
        assert "video" not in streams
    source_has_audio = source.family in ("video", "audio")
    if audio_codec is not None and source_has_audio:
        assert streams["audio"]["codec_name"] == audio_codec
    if source is not Kind.GIF:
        duration = float(probe["format"]["duration"])
        assert abs(duration - MEDIA_SECONDS) < 0.35, duration


# --- the walk ---------------------------------------------------------------------------


ARCHIVE_TARGETS = {OutputFormat.ZIP, OutputFormat.TAR, OutputFormat.TGZ, OutputFormat.SEVEN_Z,
                   OutputFormat.GZ, OutputFormat.BZ2, OutputFormat.XZ, OutputFormat.RAR}


def _unpacks(kind: Kind, target: OutputFormat) -> bool:
    """An archive converted to a media format: its entries come back converted, in a zip."""
    return kind.family == "archive" and target not in ARCHIVE_TARGETS


def _expected_refusal(kind: Kind, target: OutputFormat, svc: Services) -> str | None:
    if target is OutputFormat.RAR and not svc.settings.rar_command:
        return "needs the proprietary `rar` program"
    # The samples hold a PNG (the RAR sample, text files): a target no PNG converts to leaves
    # nothing to convert.
    if _unpacks(kind, target) and (kind is Kind.RAR
                                   or target not in REGISTRY.targets_for(Kind.PNG)):
        return "holds"
    return None


def check_unpacked(path: Path, target: OutputFormat, tmp_path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert len(names) == 1 and names[0].endswith(f".{extension_for(target.value)}"), names
        entry = tmp_path / "entry"
        entry.write_bytes(zf.read(names[0]))
    check_output(entry, target, Kind.PNG)


@pytest.mark.parametrize(("kind", "target"), PAIRS, ids=[f"{k.value}-{t.value}" for k, t in PAIRS])
def test_pair(kind: Kind, target: OutputFormat, samples: dict[Kind, Path], svc: Services,
              tmp_path: Path) -> None:
    if kind not in samples:
        pytest.skip(f"no {kind} sample")
    src = tmp_path / "source"
    shutil.copyfile(samples[kind], src)
    spec = FileSpec(index=0, filename=f"sample.{kind.own_format}", format=target,
                    compression=60)
    refusal = _expected_refusal(kind, target, svc)
    if refusal is not None:
        with pytest.raises(UnsupportedConversionError, match=refusal):
            convert_path(svc, src, spec, tmp_path)
        return
    out = convert_path(svc, src, spec, tmp_path)
    path = Path(out.path)
    assert path.is_file() and path.parent == tmp_path and path.stat().st_size > 0
    if _unpacks(kind, target):
        assert out.format == "zip"
        check_unpacked(path, target, tmp_path)
        return
    assert out.format == target.value
    check_output(path, target, kind)


COMPRESSIBLE = sorted(kind for kind, targets in REGISTRY.matrix().items()
                      if kind.own_format in {t.value for t in targets})


@pytest.mark.parametrize("kind", COMPRESSIBLE, ids=[k.value for k in COMPRESSIBLE])
def test_compress_keeps_the_format(kind: Kind, samples: dict[Kind, Path], svc: Services,
                                   tmp_path: Path) -> None:
    if kind not in samples:
        pytest.skip(f"no {kind} sample")
    src = tmp_path / "source"
    shutil.copyfile(samples[kind], src)
    spec = FileSpec(index=0, filename=f"sample.{kind.own_format}", job_type=JobType.COMPRESS,
                    compression=50)
    refusal = _expected_refusal(kind, OutputFormat(kind.own_format), svc)
    if refusal is not None:
        with pytest.raises(UnsupportedConversionError, match=refusal):
            convert_path(svc, src, spec, tmp_path)
        return
    out = convert_path(svc, src, spec, tmp_path)
    assert out.format == kind.own_format
    check_output(Path(out.path), OutputFormat(kind.own_format), kind)
