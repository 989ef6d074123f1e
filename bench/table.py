"""Markdown for the benchmark results: one table line per comparison, plus the small-files
breakdown. Every row is a dict from bench.run with a "row" key naming its kind."""

from __future__ import annotations

from typing import Any

HEADER = ("| benchmark | side by side | Convertly | ratio | target | holds |\n"
          "| --- | --- | --- | --- | --- | --- |")


def _holds(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _batch(row: dict[str, Any]) -> list[str]:
    loops = ", ".join(f"{v} img/s ({k.removeprefix('libraryLoop')} proc)"
                      for k, v in row.items() if k.startswith("libraryLoop"))
    return [f"| {row['name']} | plain loop {loops} | {row['api']} img/s | "
            f"{row['ratioVsBestLoop']} | ≥ {row['target']} | "
            f"{_holds(row['ratioVsBestLoop'] >= row['target'])} |"]


def _sync(row: dict[str, Any]) -> list[str]:
    lines = []
    for level in row["levels"]:
        mine, theirs = level["convertly"], level["thumbor"]
        ratio = level["ratio"] or 0
        lines.append(
            f"| {row['name']}, concurrency {level['concurrency']} | thumbor "
            f"{theirs['rps']} req/s (p50 {theirs['p50Ms']} ms, p95 {theirs['p95Ms']} ms) | "
            f"{mine['rps']} req/s (p50 {mine['p50Ms']} ms, p95 {mine['p95Ms']} ms) | "
            f"{ratio} | ≥ {row['target']} | {_holds(ratio >= row['target'])} |")
    return lines


def _tools(row: dict[str, Any]) -> list[str]:
    lines = []
    for level in row["levels"]:
        cpu = level["cpuMsPerImage"]
        errors = level.get("errors", 0)
        # A request answered with anything but 200 is not a thumbnail: the row cannot hold.
        refused = f", **{errors} not answered 200**" if errors else ""
        ok = (level["ratio"] or 0) >= row["target"] and not errors
        lines.append(
            f"| {row['name']}: {level['tool']} | plain libvips loop {level['loopPerSecond']} "
            f"img/s ({cpu['loop']} ms CPU each) | {level['apiPerSecond']} req/s, p50 "
            f"{level['p50Ms']} ms (CPU per request: API {cpu['apiProcess']} ms, conversion "
            f"{cpu['conversionProcesses']} ms){refused} | {level['ratio']} | "
            f"≥ {row['target']} | {_holds(ok)} |")
    return lines


def _upload(row: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in (("oneFile", "one file"), ("manyFiles", "many files")):
        part = row[key]
        ok = (part["mbPerSecond"] >= row["targetMBps"]
              and part["peakRssMiB"] <= row["targetRssMiB"])
        lines.append(
            f"| {row['name']}: {label}, {part['mb']} MB | API process idle at "
            f"{row['idleRssMiB']} MiB | {part['mbPerSecond']} MB/s, peak RSS "
            f"{part['peakRssMiB']} MiB | — | ≥ {row['targetMBps']} MB/s, ≤ "
            f"{row['targetRssMiB']} MiB | {_holds(ok)} |")
    return lines


def _video(row: dict[str, Any]) -> list[str]:
    return [f"| {row['name']} | ffmpeg alone {row['ffmpegSeconds']} s | {row['apiSeconds']} s "
            f"| {row['ratio']} | ≥ {row['target']} | {_holds(row['ratio'] >= row['target'])} |"]


def _small(row: dict[str, Any]) -> list[str]:
    phases = row["phases"]
    loops = ", ".join(f"{v} files/s ({k.removeprefix('libraryLoop')} proc)"
                      for k, v in row.items() if k.startswith("libraryLoop"))
    cpu = (f"; CPU {row['cpuMsPerFile']} ms/file (API process {row['apiCpuMsPerFile']}) vs "
           f"the loop's {row['loopCpuMsPerFile']}: {row['cpuRatio']}" if "cpuRatio" in row
           else "")
    load = (f"; load average {row['loadAverage'][0]} → {row['loadAverage'][1]}"
            if "loadAverage" in row else "")
    target = f"≥ {row['target']}" if "target" in row else "—"
    holds = _holds(row["ratio"] >= row["target"]) if "target" in row else "—"
    return [f"| {row['name']} | plain loop {loops} | {row['filesPerSecond']} files/s "
            f"({row['seconds']} s; accepted after {phases['uploadAndQueueSeconds']} s{cpu}"
            f"{load}) | {row['ratio']} | {target} | {holds} |"]


def _dispatch(row: dict[str, Any]) -> list[str]:
    commands = (f"; {row['redisCommandsPerFile']} Redis commands per file"
                if "redisCommandsPerFile" in row else "")
    return [f"| {row['name']} | Celery no-op {row['celeryNoopMs']} ms/task | "
            f"{row['convertlyPerFileMs']} ms/file, of which conversion "
            f"{row['conversionMs']} ms{commands} | +{row['overheadMs']} ms | a few ms | — |"]


def _trace(row: dict[str, Any]) -> list[str]:
    return [f"| {row['name']} | — | {row['traceSeconds']} s, {row['svgKiB']} KiB "
            f"(mono {row['monoSeconds']} s, {row['monoKiB']} KiB) | — | seconds, not "
            "minutes | — |"]


def _stream_workers(row: dict[str, Any]) -> list[str]:
    return [f"| {row['name']} | 1 worker {row['oneWorkerSeconds']} s | 2 workers "
            f"{row['twoWorkersSeconds']} s | {row['ratio']} | speed-up | — |"]


RENDERERS = {"batch": _batch, "distributed": _batch, "sync": _sync, "tools": _tools,
             "upload": _upload, "video": _video, "streams": _video,
             "streams-workers": _stream_workers, "small": _small, "dispatch": _dispatch,
             "trace": _trace}


def breakdown(row: dict[str, Any]) -> list[str]:
    """Where a small-files job's time goes: wall-clock phases and the CPU profile."""
    phases = row["phases"]
    lines = ["", f"Small files ({row['files']} in one job), wall clock: upload, parse, store "
             f"and queue {phases['uploadAndQueueSeconds']} s; created → first file started "
             f"{phases['createdToFirstStartSeconds']} s; first file started → job completed "
             f"{phases['firstStartToCompletedSeconds']} s."]
    if row.get("cpuProfilePercent"):
        lines += ["", "| phase (py-spy, API + conversion processes, idle excluded) | CPU share |",
                  "| --- | --- |"]
        lines += [f"| {phase} | {share} % |"
                  for phase, share in row["cpuProfilePercent"].items()]
    return lines


def cpu_breakdown(row: dict[str, Any]) -> list[str]:
    """Where the cores went during a distributed job, and the spread of its ratio."""
    cpu = row["cpuSeconds"]
    parts = ", ".join(f"{name} {seconds}" for name, seconds in cpu.items())
    capacity = round(row["totalSeconds"] * row["cores"], 1)
    spread = ", ".join(str(r) for r in row["ratios"])
    return ["", f"Distributed on {row['s3Server']}: ratio per job {spread}. Core-seconds "
            f"during the last job ({row['totalSeconds']} s × {row['cores']} cores = "
            f"{capacity}): {parts}."]


def render(rows: list[dict[str, Any]]) -> str:
    """The markdown table for `rows`, and the breakdowns of the rows that have one."""
    lines = [HEADER]
    for row in rows:
        lines += RENDERERS[row["row"]](row)
    for row in rows:
        if row["row"] == "small":
            lines += breakdown(row)
        elif row["row"] == "distributed" and "cpuSeconds" in row:
            lines += cpu_breakdown(row)
    return "\n".join(lines)
