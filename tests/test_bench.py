"""The benchmark's own pieces on tiny inputs: corpus, request bodies, the load generator's
statistics, the profile's phases and the table. Nothing here is timed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from python_multipart.multipart import MultipartParser

from bench.compression import Row
from bench.compression import render as render_compression
from bench.corpus import make_photo, small_pngs
from bench.harness import CpuMeter, multipart_files
from bench.load import LoadResult, http_request, merge
from bench.loops import photo_thumbnail, photo_transform
from bench.profile import classify
from bench.table import render
from bench.upload import multipart_stream


def test_small_pngs_are_distinct_pngs_of_the_asked_size() -> None:
    pngs = small_pngs(3, (16, 12))
    assert len(set(pngs)) == 3
    for data in pngs:
        with Image.open(io.BytesIO(data)) as img:
            assert (img.format, img.size, img.mode) == ("PNG", (16, 12), "RGB")


def test_photo_is_made_once(tmp_path: Path) -> None:
    first = make_photo(tmp_path, 40, 30)
    made_at = first.stat().st_mtime_ns
    with Image.open(first) as img:
        assert (img.format, img.size) == ("JPEG", (40, 30))
    assert make_photo(tmp_path, 40, 30) == first
    assert first.stat().st_mtime_ns == made_at


def _parse(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, bytes]]:
    boundary = content_type.split("boundary=", 1)[1].encode()
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    state: dict[str, Any] = {"headers": b"", "data": b""}

    def on_part_begin() -> None:
        state.update(headers=b"", data=b"")

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["headers"] += data[start:end] + b";"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"] += data[start:end]

    def on_part_end() -> None:
        headers = state["headers"].decode()
        name = headers.split('name="', 1)[1].split('"', 1)[0]
        if 'filename="' in headers:
            files[headers.split('filename="', 1)[1].split('"', 1)[0]] = state["data"]
        else:
            fields[name] = state["data"].decode()

    parser = MultipartParser(boundary, {  # type: ignore[arg-type]
        "on_part_begin": on_part_begin, "on_header_value": on_header_value,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    parser.write(body)
    parser.finalize()
    return fields, files


def test_multipart_files_body_parses_back() -> None:
    body, content_type = multipart_files({"format": "webp"},
                                         [("a.png", b"\x89PNG-a", "image/png"),
                                          ("b.png", b"b" * 70, "image/png")])
    assert _parse(body, content_type) == ({"format": "webp"},
                                          {"a.png": b"\x89PNG-a", "b.png": b"b" * 70})


def test_streamed_upload_body_has_its_announced_length_and_parses_back() -> None:
    chunks, total, content_type = multipart_stream({"format": "webp"},
                                                   [("big.bin", 10), ("small.bin", 3)],
                                                   b"0123")
    body = b"".join(chunks)
    assert len(body) == total
    fields, files = _parse(body, content_type)
    assert fields == {"format": "webp"}
    assert files == {"big.bin": b"0123012301", "small.bin": b"012"}


def test_http_request_is_a_complete_http11_request() -> None:
    raw = http_request("POST", "http://127.0.0.1:8000/api/convert?x=1",
                       {"Content-Type": "text/plain"}, b"hello")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/convert?x=1 HTTP/1.1"
    assert "Host: 127.0.0.1:8000" in lines
    assert "Content-Length: 5" in lines
    assert body == b"hello"


def test_load_result_percentiles_and_merge() -> None:
    a = LoadResult(4, 3, 0, 1.0, (10.0, 20.0, 30.0))
    b = LoadResult(4, 1, 1, 1.0, (40.0,))
    both = merge([a, b])
    assert (both.requests, both.errors, both.seconds) == (4, 1, 2.0)
    assert both.rps == 2.0
    assert both.percentile(50) == 20.0
    assert both.percentile(95) == 40.0
    assert LoadResult(1, 0, 0, 0.0, ()).percentile(50) == 0.0


def test_profile_samples_go_to_the_first_matching_phase_and_idle_ones_are_dropped() -> None:
    lines = [
        "process 1:\"convertly serve\";run_file (convertly/executors/pool.py:40);"
        "convert_path (convertly/pipeline.py:150);_save (convertly/converters/image/save.py:3) 7",
        "process 1:\"convertly serve\";run_file (convertly/executors/pool.py:40);"
        "SqliteJobStore.start_file (convertly/state/sqlite/jobs.py:9) 2",
        "process 1:\"convertly serve\";Thread.run (threading.py:1);"
        "_PollLikeSelector.select (selectors.py:415) 50",
        "process 1:\"convertly serve\";Server.run (uvicorn/server.py:1) 1",
    ]
    assert classify(lines) == {"conversion": 7, "job state (SQLite)": 2,
                               "other (HTTP server, event loop)": 1}


def test_the_tools_loops_make_what_the_tools_answer(tmp_path: Path) -> None:
    photo = make_photo(tmp_path, 400, 266)
    for loop, fmt, size in ((photo_thumbnail, "JPEG", (320, 213)),
                            (photo_transform, "WEBP", (640, 640))):
        out = tmp_path / f"out.{fmt.lower()}"
        loop((str(photo), str(out)))
        with Image.open(out) as img:
            assert (img.format, img.size) == (fmt, size)


def test_table_renders_every_row_kind_and_says_which_targets_hold() -> None:
    rows: list[dict[str, Any]] = [
        {"row": "batch", "name": "batch", "libraryLoop1": 2.0, "libraryLoop2": 4.0,
         "api": 3.8, "ratioVsBestLoop": 0.95, "target": 0.9},
        {"row": "sync", "name": "sync", "target": 1.5, "ratio": 1.2, "levels": [
            {"concurrency": 1, "ratio": 1.2,
             "convertly": {"rps": 60.0, "p50Ms": 16.0, "p95Ms": 20.0},
             "thumbor": {"rps": 50.0, "p50Ms": 18.0, "p95Ms": 21.0}}]},
        {"row": "upload", "name": "upload", "idleRssMiB": 60, "targetMBps": 100,
         "targetRssMiB": 150,
         "oneFile": {"mb": 2000, "mbPerSecond": 300.0, "peakRssMiB": 62},
         "manyFiles": {"mb": 200, "mbPerSecond": 90.0, "peakRssMiB": 62}},
        {"row": "video", "name": "video", "ffmpegSeconds": 12.0, "apiSeconds": 12.2,
         "ratio": 0.984, "target": 0.97},
        {"row": "distributed", "name": "distributed", "libraryLoop2": 7.0, "api": 6.2,
         "ratioVsBestLoop": 0.886, "target": 0.9, "s3Server": "nanio", "ratios": [0.88, 0.892],
         "totalSeconds": 8.0, "cores": 2,
         "cpuSeconds": {"conversion workers": 14.1, "API": 0.37, "client": 0.1, "idle": 0.4}},
        {"row": "small", "name": "small", "files": 1000, "libraryLoop2": 500.0,
         "filesPerSecond": 250.0, "seconds": 4.0, "ratio": 0.5, "target": 0.8,
         "cpuMsPerFile": 5.0, "apiCpuMsPerFile": 1.0, "loopCpuMsPerFile": 4.0,
         "cpuRatio": 0.8,
         "loadAverage": [0.1, 0.3],
         "phases": {"uploadAndQueueSeconds": 0.6, "createdToFirstStartSeconds": 0.05,
                    "firstStartToCompletedSeconds": 3.3},
         "cpuProfilePercent": {"conversion": 55.0, "storage": 15.0}},
        {"row": "tools", "name": "tools", "target": 0.9, "ratio": 0.85, "levels": [
            {"tool": "thumbnail", "apiPerSecond": 50.0, "loopPerSecond": 52.0, "p50Ms": 70.0,
             "errors": 0, "ratio": 0.96, "cpuMsPerImage": {
                 "loop": 20.0, "apiProcess": 1.0, "conversionProcesses": 20.5}},
            {"tool": "transform", "apiPerSecond": 17.0, "loopPerSecond": 20.0, "p50Ms": 200.0,
             "errors": 0, "ratio": 0.85, "cpuMsPerImage": {
                 "loop": 100.0, "apiProcess": 7.0, "conversionProcesses": 110.0}}]},
    ]
    table = render(json.loads(json.dumps(rows)))
    lines = table.splitlines()
    assert lines[0].startswith("| benchmark |")
    assert "| batch | plain loop 2.0 img/s (1 proc), 4.0 img/s (2 proc) | 3.8 img/s | 0.95 " \
           "| ≥ 0.9 | yes |" in lines
    assert any(line.startswith("| sync, concurrency 1 |") and line.endswith("| **no** |")
               for line in lines)
    upload = [line for line in lines if line.startswith("| upload")]
    assert [line.rsplit("|", 2)[-2].strip() for line in upload] == ["yes", "**no**"]
    assert any(line.startswith("| video |") and line.endswith("| yes |") for line in lines)
    assert "| conversion | 55.0 % |" in lines
    cpu = "CPU 5.0 ms/file (API process 1.0) vs the loop's 4.0: 0.8"
    assert any(line.startswith("| small |") and cpu in line
               and "load average 0.1 → 0.3" in line and line.endswith("| ≥ 0.8 | **no** |")
               for line in lines)
    tools = [line for line in lines if line.startswith("| tools: ")]
    assert [line.rsplit("|", 2)[-2].strip() for line in tools] == ["yes", "**no**"]
    assert "(CPU per request: API 1.0 ms, conversion 20.5 ms)" in tools[0]
    assert any(line.startswith("| distributed |") and line.endswith("| **no** |")
               for line in lines)
    assert ("Distributed on nanio: ratio per job 0.88, 0.892. Core-seconds during the last job "
            "(8.0 s × 2 cores = 16.0): conversion workers 14.1, API 0.37, client 0.1, "
            "idle 0.4.") in lines


def test_cpu_meter_charges_a_process_group_with_the_cpu_its_processes_used() -> None:
    burn = ("import sys, time\n"
            "end = time.process_time() + 0.4\n"
            "while time.process_time() < end: pass\n"
            "print('done', flush=True)\n"
            "time.sleep(60)\n")
    with CpuMeter({"idle group": [2**22 + 7]}) as outer, \
            subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE,
                             start_new_session=True) as proc:
        try:
            with CpuMeter({"burner": [proc.pid]}) as meter:
                assert proc.stdout is not None and proc.stdout.readline() == b"done\n"
        finally:
            proc.kill()
    assert 0.35 <= meter.seconds["burner"] <= 2.0
    assert outer.seconds["idle group"] == 0
    assert outer.seconds["client"] >= 0.35  # the burner, reaped: a child of this process
    assert meter.seconds["idle"] >= 0


def test_compression_table_has_a_row_per_file_and_a_total() -> None:
    rows = [Row("a.jpg", "4×4", 1000, 95, 400, 0.9, 300, 0.91, ""),
            Row("b.jpg", "4×4", 1000, 60, 1000, 1.0, 1000, 1.0, "kept")]
    table = render_compression(rows, 70, lossless=False)
    assert "| a.jpg | 4×4 | 1,000 | 95 | 400 | 60.0 % | 0.9000 | 300 | 70.0 % | 0.9100 |" in table
    assert "| **all** | | 2,000 | | 1,400 | 30.0 % | | 1,300 | 35.0 % | |" in table
    assert "- b.jpg: kept" in table
