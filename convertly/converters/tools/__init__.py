"""The media tools (thumbnail, trim, inspect, ...): one source file in, files and facts out.

    base.py     Tool, ToolOutput: what every tool declares and returns
    media.py    poster-frame, extract-audio, trim, gif, storyboard (ffmpeg)
    inspect.py  inspect: a probe of any image, PDF, audio or video file, no output file
    documents.py  pdf-preview (a PDF page as an image), image-to-pdf
    overlay.py  watermark: text or a logo over an image or a video
    background.py  remove-background: the operator's ONNX segmentation model
    raster.py   reading a source image and writing an image output (the image tools)
    image.py    thumbnail, transform: the image tools on the transform engine
    metadata.py strip-metadata (images by libvips, audio and video by ffmpeg stream copy)
    registry.py every tool by name (`default_tools`): what the API, jobs and CLI run
"""
