"""Audio out of audio or video: mp3, wav, ogg (Vorbis), m4a (AAC) and flac.

The file's audio track is encoded with ffmpeg (ffmpeg.py chooses the encoder and its
settings); cover art is kept where the target holds one. A lossless compress into a lossy
format keeps the stream as it is and only removes metadata.
"""

from __future__ import annotations

from dataclasses import replace

from convertly.converters.media.compress import (
    audio_to_size,
    check_lossless_size,
    keep_smaller,
    remux,
)
from convertly.converters.media.ffmpeg import Encoding, audio_encoding, input_url, is_deep
from convertly.converters.media.task import WORK_FACTOR, Task, cover_args
from convertly.errors import ConversionError
from convertly.models import CompressMode, ConvertedFile, OutputFormat

F = OutputFormat
_LOSSLESS_TARGETS = frozenset({F.WAV, F.FLAC})


def to_audio(task: Task) -> ConvertedFile:
    audio = task.info.audio
    if audio is None:
        raise ConversionError(
            f"This file has no audio track, so it cannot become {task.target.value}."
        )
    spec = task.spec
    lossless_target = task.target in _LOSSLESS_TARGETS
    if task.compress and spec.lossless and not lossless_target:
        # A lossy stream cannot be encoded again without loss: keep it, drop what may go.
        remux(task)
        check_lossless_size(task)
        return task.result(["Lossless compression keeps the audio stream as it is; only "
                            "metadata can be removed."])  # fmt: skip

    def encode(kbps: int = 0) -> Encoding:
        sound = audio_encoding(
            task.target.value, audio, spec.compression, kbps, smallest=task.compress,
            keep_pcm=task.compress and (spec.lossless or not is_deep(audio)),
        )  # fmt: skip
        args = ["-i", input_url(task.src), "-map", f"0:{audio.index}", *sound.args,
                *cover_args(task)]  # fmt: skip
        return replace(sound, args=(*args, *task.output()), note=sound.note + ".")

    if task.compress and spec.mode is CompressMode.TARGET_SIZE and not lossless_target:
        done = audio_to_size(task, encode)
    else:
        done = encode()
        task.run(list(done.args), WORK_FACTOR["audio"])
        check_lossless_size(task)
    notes = [done.note, *task.truncation(audio)]
    if task.compress:
        return keep_smaller(task, done, notes, None)
    return task.result(notes, done.quality)
