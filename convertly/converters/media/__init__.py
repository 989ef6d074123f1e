"""Audio and video through ffmpeg.

converter.py  MediaConverter: checks the target, the compress options and the limits, routes
task.py       Task, the one conversion every step works on, and the target lists
video.py      video, animations and still frames out of video and GIFs
audio.py      audio out of audio or video
compress.py   a target size reached by bitrate; never a file larger than the original
encryption.py encrypted (DRM) MP4/MOV/M4A, refused before ffmpeg decodes noise
source.py     a file opened: probed, its limits checked (the converter's and the tools'
              one way in), and one frame taken out as PNG
ffmpeg.py     ffprobe, running ffmpeg with progress, and the arguments for filters and encoders
"""

from convertly.converters.media.converter import TARGETS, MediaConverter, register
from convertly.converters.media.task import (
    ANIMATION_TARGETS,
    AUDIO_TARGETS,
    FRAME_TARGETS,
    VIDEO_TARGETS,
)

__all__ = ["ANIMATION_TARGETS", "AUDIO_TARGETS", "FRAME_TARGETS", "TARGETS", "VIDEO_TARGETS",
           "MediaConverter", "register"]
