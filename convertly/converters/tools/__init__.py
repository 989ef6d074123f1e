"""The media tools (thumbnail, trim, inspect, ...): one source file in, files and facts out.

    base.py     Tool, ToolOutput: what every tool declares and returns
    image.py    thumbnail, transform: the image tools on the transform engine
    metadata.py strip-metadata (images by libvips, audio and video by ffmpeg stream copy)
    registry.py every tool by name (`default_tools`): what the API, jobs and CLI run
"""
