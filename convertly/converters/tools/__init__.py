"""The media tools (thumbnail, trim, inspect, ...): one source file in, files and facts out.

    base.py     Tool, ToolOutput: what every tool declares and returns
    image.py    thumbnail, transform: the image tools on the transform engine
    media.py    poster-frame, extract-audio, trim, gif, storyboard (ffmpeg)
    inspect.py  inspect: a probe of any image, PDF, audio or video file, no output file
"""
